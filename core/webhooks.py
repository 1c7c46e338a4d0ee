"""The contract every webhook source implements: verify a delivery, turn it into events.

A webhook source is a :class:`~core.source.Source` that a recipe names under ``source: use:``
like any other (``virtuous.webhook``, ``stripe.webhook``...). ``connector serve`` hands it each
HTTP request to the recipe's route as a :class:`Delivery`; the source checks the signature
(:meth:`WebhookSource.verify`) before anything else, then splits the body into :class:`Event`
objects that the server writes to the durable inbox before it answers 2xx. Draining the inbox
runs the recipe's filter, map and sink over each event's ``record``, through the same ledger as
a polling recipe, so a redelivered event, or one a reconciling poll also read, is never written
twice.

A service with a subscription API also implements :meth:`subscribe`, :meth:`subscriptions` and
:meth:`unsubscribe`, which ``connector webhooks register|list|remove`` call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from core.errors import ConnectorError
from core.source import Record, Source, Unreadable


class WebhookSettings(BaseModel):
    """The ``with:`` keys every webhook source accepts; a service's settings extend these."""

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(
        default=None, description="the subscription's signing secret (or the URL's secret)"
    )
    events: list[str] | None = Field(
        default=None, description="event types to process; others are acknowledged and ignored"
    )
    refetch: bool = Field(
        default=False,
        description="read the event's object again from the API before writing it"
        " (for services that may deliver out of order)",
    )
    max_body_bytes: int = Field(
        default=1_000_000, gt=0, description="larger deliveries are refused with 413"
    )

    #: The event types the source can process, which ``events:`` chooses from (empty: any).
    known_events: ClassVar[tuple[str, ...]] = ()

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str] | None) -> list[str] | None:
        unknown = [e for e in events or [] if cls.known_events and e not in cls.known_events]
        if unknown:
            msg = f"unknown event {unknown[0]!r}; choose from {', '.join(cls.known_events)}"
            raise PydanticCustomError("event", msg)
        return events


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as it reached ``connector serve``: nothing parsed, nothing trusted."""

    method: str
    #: header names in lower case
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    #: seconds since the epoch when it arrived (signature timestamps are checked against it)
    received_at: float


@dataclass(frozen=True)
class Event:
    """One verified event, as the inbox keeps it.

    ``key`` is the record's key in the ledger (the same key a polling source of the same objects
    gives, so both paths share it); ``id`` is the service's event id where it has one.
    """

    type: str
    key: str
    record: Record
    id: str | None = None
    occurred_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription on the service: where it delivers, and the secret to store."""

    id: str
    url: str
    events: list[str]
    secret: str | None = None


class WebhookRejected(ConnectorError):
    """The delivery's signature, secret or timestamp does not check out: answer 401."""


class MalformedDelivery(ConnectorError):
    """The delivery is signed correctly but cannot be read: answer 400."""


class WebhookSource(Source):
    """A source fed by a service's deliveries rather than by polling.

    Subclasses set ``name``, ``Settings`` (a :class:`WebhookSettings` subclass) and implement
    :meth:`verify` and :meth:`events`. ``validation_methods`` lists the HTTP methods (other
    than POST) the service uses to check a URL before it delivers (Mailchimp's GET).
    """

    Settings: ClassVar[type[BaseModel]] = WebhookSettings
    validation_methods: ClassVar[frozenset[str]] = frozenset()

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        """A webhook source is read through ``connector serve``'s inbox, not polled."""
        return iter(())

    def verify(self, delivery: Delivery) -> None:
        """Raise :class:`WebhookRejected` unless ``delivery`` comes from the service."""
        raise NotImplementedError

    def events(self, delivery: Delivery) -> list[Event]:
        """The events in a verified delivery; :class:`MalformedDelivery` if it cannot be read.

        Events of types the recipe's ``events:`` does not select are still returned: the server
        acknowledges and counts them, and :meth:`selects` decides what is processed. Only
        selected events are kept in the inbox, each under ``(recipe, event.id)`` when it has
        an id: a redelivery of the same id is not kept twice.
        """
        raise NotImplementedError

    def signing_secret(self, where: str) -> str:
        """The recipe's ``secret:`` as text; :class:`WebhookRejected` when it is unset or blank,
        since no delivery can then be verified. ``where`` tells the user where to find one."""
        text = self._secret_text()
        if not text:
            msg = f"{self.name} has no secret, so no delivery can be verified: set with: secret:"
            msg += f" ({where})"
            raise WebhookRejected(msg)
        return text

    def url_secret(self) -> str:
        """The recipe's ``secret:``, for the URL a new subscription delivers to (a service whose
        deliveries are unsigned); :class:`ConnectorError` when it is unset or blank."""
        text = self._secret_text()
        if not text:
            msg = f"{self.name}: set with: secret: before subscribing; it goes in the URL"
            raise ConnectorError(msg)
        return text

    def _secret_text(self) -> str:
        secret = getattr(self.settings, "secret", None)
        text = secret.get_secret_value() if isinstance(secret, SecretStr) else ""
        return text if text.strip() else ""

    def selects(self, event: Event) -> bool:
        """Whether the recipe processes ``event`` (its ``events:`` setting, when given)."""
        wanted = getattr(self.settings, "events", None)
        return wanted is None or event.type in wanted

    def answer_validation(self, delivery: Delivery) -> tuple[int, str]:
        """The answer to a URL check (a ``validation_methods`` request): status and body.
        ``connector serve`` calls it only after :meth:`verify` accepted the request."""
        return 200, ""

    def refetch(self, event: Event) -> Record | None:
        """The event's object as the API has it now; None when the object no longer exists.
        ``connector serve`` calls it, while draining the inbox, for each event of a recipe whose
        settings say ``refetch: true`` (a service with unsigned deliveries keeps it on)."""
        return event.record

    # --- subscriptions (services with an API for them) ----------------------------------------

    def subscribe(self, url: str) -> Subscription:
        """Create a subscription delivering this recipe's events to ``url``."""
        msg = f"{self.name} has no API to create webhook subscriptions; add {url} in its dashboard"
        raise ConnectorError(msg)

    def subscriptions(self) -> list[Subscription]:
        """The subscriptions the service has for this credential."""
        msg = f"{self.name} has no API to list webhook subscriptions"
        raise ConnectorError(msg)

    def unsubscribe(self, subscription_id: str) -> None:
        msg = f"{self.name} has no API to remove webhook subscriptions"
        raise ConnectorError(msg)


# --- helpers for the sources -----------------------------------------------------------------


def json_body(delivery: Delivery, service: str) -> Any:
    """The delivery's body as JSON; :class:`MalformedDelivery` (400) if it is not JSON."""
    try:
        return json.loads(delivery.body)
    except (UnicodeDecodeError, ValueError) as error:
        msg = f"{service} delivery is not JSON ({error.__class__.__name__}: {error})"
        raise MalformedDelivery(msg) from None


def hmac_sha256(secret: str, message: bytes, encoding: Literal["base64", "hex"] = "hex") -> str:
    """The HMAC-SHA256 of ``message`` keyed by ``secret``, as base64 or lower-case hex text: what
    most services sign a delivery with (and what their emulators sign with)."""
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


def signature_header(delivery: Delivery, name: str, service: str) -> str:
    """The value of the header ``name`` that signs ``delivery``; :class:`WebhookRejected` when
    it has none (or an empty one): the delivery is not signed."""
    value = delivery.headers.get(name.lower(), "").strip()
    if not value:
        msg = f"{service} delivery without a {name} header: it is not signed"
        raise WebhookRejected(msg)
    return value


def same_secret(given: str, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time (a signature or a secret:
    how long a comparison takes must not tell an attacker how much of it was right)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def check_url_secret(delivery: Delivery, parameter: str, secret: str, service: str) -> None:
    """Refuse a delivery whose URL does not carry ``secret`` as ``?parameter=``: the only proof
    of origin a service with unsigned deliveries gives."""
    given = delivery.query.get(parameter, "")
    if not given:
        msg = f"{service} delivery without ?{parameter}= in its URL: it is not from our webhook"
        raise WebhookRejected(msg)
    if not same_secret(given, secret):
        msg = f"{service} delivery with a wrong secret in its URL: it is not from our webhook"
        raise WebhookRejected(msg)


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to (or replacing those in) its query string: a secret put in
    a subscription's URL, or masked (``secret="***"``) where the URL is shown."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()], safe="*")))


def masked(url: str, parameter: str = "secret") -> str:
    """``url`` with the secret its query carries as ``parameter`` shown as ``***`` (a
    subscription's URL, as commands print it)."""
    return with_query(url, **{parameter: "***"}) if f"{parameter}=" in url else url


def check_age(signed_at: float, delivery: Delivery, tolerance: float, service: str) -> None:
    """Refuse a correctly signed delivery whose signature is older than ``tolerance`` seconds
    when it arrived: a replay of a captured request (0 turns the check off)."""
    age = delivery.received_at - signed_at
    if tolerance and age > tolerance:
        msg = (
            f"{service} signature is {age:.0f} s old, over the tolerance of {tolerance:g} s:"
            " a replay of an old delivery is refused"
        )
        raise WebhookRejected(msg)
