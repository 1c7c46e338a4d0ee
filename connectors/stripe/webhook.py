"""``stripe.webhook``: charges as Stripe delivers them, verified with the stripe SDK.

Stripe signs each delivery with the endpoint's secret (``whsec_...``, used as-is):
``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, with one ``v1`` per
secret while a secret is being rotated. :meth:`StripeWebhook.verify` checks it with
``stripe.WebhookSignature.verify_header``, then refuses a signature older than
``tolerance_seconds`` (300, Stripe's default) when the delivery arrived, so a captured delivery
replayed later is refused (401) like a forged one.

Each event becomes one record shaped and keyed exactly as ``stripe.charges`` shapes and keys a
charge (the charge's ``id``; ``fee``, ``net``, ``customer_id``... added), so a polling recipe's
``map:`` works unchanged and a reconciling poll shares the ledger. An event's charge is not
expanded: ``fee`` and ``customer_email`` are None unless ``refetch: true`` reads the charge
again, with its balance transaction and customer, as the polling recipe does. A
``charge.refund.updated`` event holds a refund, not its charge, so it is processed only with
``refetch: true`` (otherwise acknowledged and ignored).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from connectors.stripe.charges import charge_record
from connectors.stripe.listing import secret_key, unexpanded_id
from connectors.stripe.models import Charge
from connectors.stripe.service import DEFAULT_BASE_URL, NAME, stripe_client, stripe_errors
from core.source import Record
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    Subscription,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
    check_age,
    json_body,
    signature_header,
)

if TYPE_CHECKING:
    import stripe

#: The events whose object is a charge (or, for ``charge.refund.updated``, leads to one).
CHARGE_EVENTS = (
    "charge.succeeded",
    "charge.pending",
    "charge.failed",
    "charge.captured",
    "charge.expired",
    "charge.updated",
    "charge.refunded",
    "charge.refund.updated",
)
#: Events whose ``data.object`` is a refund: the charge is read from the API.
REFUND_EVENTS = frozenset({"charge.refund.updated"})


class StripeWebhookSettings(WebhookSettings):
    known_events: ClassVar[tuple[str, ...]] = CHARGE_EVENTS

    secret: SecretStr | None = Field(
        default=None,
        description="the endpoint's signing secret (whsec_...), as `connector webhooks register`"
        " prints it or the dashboard shows it",
    )
    api_key: SecretStr = Field(
        description="a secret (sk_) or restricted key: to read a charge again (refetch,"
        " charge.refund.updated) and to manage webhook endpoints"
    )
    base_url: str = Field(DEFAULT_BASE_URL, description="Stripe's API address")
    tolerance_seconds: int = Field(
        300, ge=0, description="a signature older than this is refused as a replay (0: no limit)"
    )

    @field_validator("api_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        return secret_key(value)

    @field_validator("secret")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # "${STRIPE_WEBHOOK_SECRET:-}" before the endpoint exists: no secret yet.
        return value if value is not None and value.get_secret_value().strip() else None

    @model_validator(mode="after")
    def _refund_events_need_refetch(self) -> StripeWebhookSettings:
        named = REFUND_EVENTS.intersection(self.events or [])
        if named and not self.refetch:
            msg = (
                f"{sorted(named)} carry a refund, not its charge: set refetch: true so the"
                " charge is read from Stripe, or leave them out of events"
            )
            raise ValueError(msg)
        return self


class StripeWebhook(WebhookSource):
    """Charge events from a Stripe webhook endpoint, as ``stripe.charges`` records."""

    name: ClassVar[str] = "stripe.webhook"
    Settings: ClassVar[type[BaseModel]] = StripeWebhookSettings
    description: ClassVar[str] = "Stripe charge events (webhooks), signed with whsec_ secrets"
    settings: StripeWebhookSettings

    def verify(self, delivery: Delivery) -> None:
        import stripe  # here, not at the top: commands that serve nothing never load the SDK

        header = signature_header(delivery, "Stripe-Signature", "Stripe")
        secret = self.signing_secret("the endpoint's whsec_...").strip()
        try:
            # tolerance=None: the SDK would compare with the clock now; the age is checked
            # against when the delivery arrived, below.
            stripe.WebhookSignature.verify_header(delivery.body, header, secret, tolerance=None)
        except stripe.SignatureVerificationError as error:
            msg = f"Stripe signature refused: {error.user_message}"
            raise WebhookRejected(msg) from None
        except UnicodeDecodeError:
            raise WebhookRejected("Stripe delivery whose body is not UTF-8 text") from None
        check_age(_signed_at(header), delivery, self.settings.tolerance_seconds, NAME)

    def events(self, delivery: Delivery) -> list[Event]:
        payload = json_body(delivery, NAME)
        if not isinstance(payload, dict) or payload.get("object") != "event":
            raise MalformedDelivery("Stripe delivery is not an event")
        kind, data = payload.get("type"), payload.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(kind, str) or not isinstance(obj, dict):
            raise MalformedDelivery("Stripe event without a type and a data.object")
        created = payload.get("created")
        return [
            Event(
                type=kind,
                key=_charge_key(obj),
                record=_record(obj),
                id=str(payload.get("id")) if payload.get("id") else None,
                occurred_at=_iso(created) if isinstance(created, int) else None,
                extra={"livemode": payload.get("livemode"), "object": obj.get("object")},
            )
        ]

    def selects(self, event: Event) -> bool:
        if event.type not in (self.settings.events or CHARGE_EVENTS):
            return False
        # A refund's event is processed only once refetch has made it its charge.
        return event.extra.get("object") == "charge" or self.settings.refetch

    def refetch(self, event: Event) -> Record | None:
        """The charge as Stripe has it now, with its balance transaction and customer expanded
        (as the polling recipe reads it); None if Stripe no longer has it."""
        import stripe

        params: Any = {"expand": ["balance_transaction", "customer"]}
        with stripe_errors():
            try:
                charge = self._stripe.v1.charges.retrieve(event.key, params=params)
            except stripe.InvalidRequestError as error:
                if error.http_status == 404:
                    return None
                raise
        return _record(charge.to_dict())

    # --- webhook endpoints ----------------------------------------------------------------

    def subscribe(self, url: str) -> Subscription:
        """A webhook endpoint for ``url`` sending the events this recipe processes, in the API
        version the SDK reads; Stripe shows its secret only now."""
        import stripe

        params: Any = {
            "url": url,
            "enabled_events": self.settings.events or self._default_events(),
            "api_version": stripe.api_version,
            "description": f"connector recipe {self.context.recipe}",
        }
        with stripe_errors():
            endpoint = self._stripe.v1.webhook_endpoints.create(params=params)
        return _subscription(endpoint)

    def subscriptions(self) -> list[Subscription]:
        with stripe_errors():
            listed = self._stripe.v1.webhook_endpoints.list(params={"limit": 100})
            return [_subscription(endpoint) for endpoint in listed.auto_paging_iter()]

    def unsubscribe(self, subscription_id: str) -> None:
        with stripe_errors():
            self._stripe.v1.webhook_endpoints.delete(subscription_id)

    def _default_events(self) -> list[str]:
        return [e for e in CHARGE_EVENTS if self.settings.refetch or e not in REFUND_EVENTS]

    @functools.cached_property
    def _stripe(self) -> stripe.StripeClient:
        """One client for the source's life: a server reads many charges again."""
        return stripe_client(self.settings.api_key, self.settings.base_url, self.context)


def _signed_at(header: str) -> int:
    """The ``t=`` of a header the SDK has accepted (so it is there, and an integer)."""
    stamps = [part.split("=", 1)[1] for part in header.split(",") if part.startswith("t=")]
    return int(stamps[0])


def _charge_key(obj: Mapping[str, Any]) -> str:
    """The ledger key of an event's object: the charge's id (a refund's charge)."""
    if obj.get("object") == "refund":
        charge = unexpanded_id(obj.get("charge"))
        if charge is None:
            raise MalformedDelivery("Stripe refund event names no charge")
        return charge
    if not obj.get("id"):
        raise MalformedDelivery("Stripe event's data.object has no id")
    return str(obj["id"])


def _record(obj: Mapping[str, Any]) -> Record:
    """A charge as ``stripe.charges`` yields it, checked against the fields recipes rely on;
    any other object (a refund, until refetched) as it came."""
    if obj.get("object") != "charge":
        return dict(obj)
    try:
        Charge.model_validate(obj)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        msg = f"Stripe charge breaks its published contract: '{field}' {first['msg']}"
        raise MalformedDelivery(msg) from None
    return charge_record(dict(obj))


def _iso(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")


def _subscription(endpoint: Any) -> Subscription:
    return Subscription(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.enabled_events),
        secret=getattr(endpoint, "secret", None),
    )
