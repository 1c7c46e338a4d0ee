"""``virtuous.webhook``: contacts and gifts as Virtuous delivers them when they change.

A delivery is ``{"event": "GiftCreate", "gift": {...}}`` (or a contact event with ``"contact"``),
signed with the subscription's secret: the base64 HMAC-SHA256 of the raw body, in the header
named by ``signature_header`` (``X-Virtuous-Signature`` unless the recipe says otherwise).

Each event's key is the object's id, the key ``virtuous.gifts`` and ``virtuous.contacts`` give
the same object, and its record is the object as those sources read it, so one recipe map serves
both paths and a reconciling poll shares the ledger. Where the two differ:

- custom fields come as a map (``{"Receipt Status": "Sent"}``); they are turned into the list
  reads carry (``[{"name", "value", "displayName"}]``), so the records compare equal;
- a contact event has ``contactAddresses`` and ``customContactType``, which reads do not;
- ``GiftDelete`` carries the deleted gift, which no poll returns any more.

Gift and contact ids are separate sequences, so one recipe handles one kind of object: its
``events:`` names gift events or contact events, never both. Subscriptions go through
``POST /api/Webhook``. Virtuous has no call that lists them, so the ones created from this state
database are remembered (the state's cache) and read back one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors.virtuous.pairing import contact_seen
from connectors.virtuous.service import VirtuousSettings, virtuous_client
from core.errors import ConnectorError
from core.http import Service, fingerprint
from core.source import Record, Seen
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    Subscription,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
    hmac_sha256,
    json_body,
    same_secret,
    signature_header,
)

if TYPE_CHECKING:  # responses come with a run: `validate` imports this module, sends none
    import httpx

#: The object each event type carries, under the key of that name.
EVENT_OBJECTS = {
    "ContactCreate": "contact",
    "ContactUpdate": "contact",
    "GiftCreate": "gift",
    "GiftUpdate": "gift",
    "GiftDelete": "gift",
}
_READ_PATHS = {"gift": "/api/Gift/{id}", "contact": "/api/Contact/{id}"}
#: Where the subscriptions created from one state database are remembered.
_MEMORY = "virtuous.webhooks"


class VirtuousWebhookSettings(WebhookSettings, VirtuousSettings):
    """The secret and events of a Virtuous webhook, and the credential for refetch and
    subscriptions (not needed just to receive)."""

    known_events: ClassVar[tuple[str, ...]] = tuple(EVENT_OBJECTS)

    signature_header: str = Field(
        default="X-Virtuous-Signature", min_length=1, description="the header with the signature"
    )

    @model_validator(mode="after")
    def _one_credential(self) -> Self:  # replaces VirtuousSettings': receiving needs no key
        if self.refetch and not self.has_credential():
            msg = "refetch: true reads each object from Virtuous: set api_key"
            raise ValueError(msg)
        return self

    def has_credential(self) -> bool:
        return self.api_key is not None or bool(self.username and self.password)

    @field_validator("events")
    @classmethod
    def _one_kind_of_object(cls, events: list[str] | None) -> list[str] | None:
        if len({EVENT_OBJECTS[e] for e in events or [] if e in EVENT_OBJECTS}) > 1:
            msg = "gift and contact events are mixed; their ids overlap, so use one recipe for each"
            raise PydanticCustomError("event", msg)
        return events

    @model_validator(mode="after")
    def _events_given(self) -> Self:
        if self.events is None:
            msg = f"set events: gift events or contact events, from {', '.join(EVENT_OBJECTS)}"
            raise PydanticCustomError("event", msg)
        return self


def signature(secret: str, body: bytes) -> str:
    """What Virtuous sends: the base64 HMAC-SHA256 of the raw body keyed by the secret."""
    return hmac_sha256(secret, body, "base64")


def as_read(obj: dict[str, Any]) -> Record:
    """The object of a delivery with its custom fields in the list form reads give."""
    fields = obj.get("customFields")
    if isinstance(fields, dict):
        listed = [{"name": k, "value": v, "displayName": k} for k, v in fields.items()]
        return {**obj, "customFields": listed}
    return dict(obj)


class VirtuousWebhook(WebhookSource):
    """Contact and gift events from Virtuous's webhooks."""

    name: ClassVar[str] = "virtuous.webhook"
    description: ClassVar[str] = "contact or gift events from Virtuous webhooks (connector serve)"
    Settings: ClassVar[type[BaseModel]] = VirtuousWebhookSettings
    settings: VirtuousWebhookSettings

    def verify(self, delivery: Delivery) -> None:
        header = self.settings.signature_header
        secret = self.signing_secret("`connector webhooks register` makes one")
        given = signature_header(delivery, header, "Virtuous")
        expected = signature(secret, delivery.body)
        if not same_secret(given, expected):
            msg = f"the {header} signature does not match the body and the secret"
            raise WebhookRejected(msg)

    def events(self, delivery: Delivery) -> list[Event]:
        body = json_body(delivery, "Virtuous")
        if not isinstance(body, dict) or not isinstance(body.get("event"), str):
            msg = 'the body has no "event" name'
            raise MalformedDelivery(msg)
        kind = body["event"]
        name = EVENT_OBJECTS.get(kind)
        if name is None:
            return [_other_event(kind, body)]
        obj = body.get(name)
        if not isinstance(obj, dict) or obj.get("id") in (None, ""):
            msg = f"the {kind} delivery has no {name} with an id"
            raise MalformedDelivery(msg)
        modified = obj.get("modifiedDateTimeUtc")
        return [
            Event(
                kind, str(obj["id"]), as_read(obj), occurred_at=str(modified) if modified else None
            )
        ]

    def pair_seen(self, record: Mapping[str, Any]) -> Seen | None:
        # A contact event's record is the contact as reads give it; a gift takes no part.
        return contact_seen(record) if "contactIndividuals" in record else None

    def refetch(self, event: Event) -> Record | None:
        from core.http import raise_for_status

        name = EVENT_OBJECTS.get(event.type)
        if name is None:
            return event.record
        client, service = self._client()
        response = client.get(_READ_PATHS[name].format(id=event.key))
        if response.status_code == 404:
            return None
        raise_for_status(response, service)
        found = response.json()
        return as_read(found) if isinstance(found, dict) else None

    # --- subscriptions -------------------------------------------------------------------------

    def subscribe(self, url: str) -> Subscription:
        from core.http import raise_for_status

        client, service = self._client()
        wanted = self.settings.events or list(EVENT_OBJECTS)
        body: dict[str, Any] = {"payloadUrl": url, "active": True}
        body |= {_toggle(event): event in wanted for event in EVENT_OBJECTS}
        if self.settings.secret is not None:
            body["secret"] = self.settings.secret.get_secret_value()
        response = client.post("/api/Webhook", json=body)
        raise_for_status(response, service)
        created = _subscription(response.json())
        self._remember([*self._remembered(), created.id])
        return replace(created, secret=body.get("secret"))

    def subscriptions(self) -> list[Subscription]:
        from core.http import raise_for_status

        client, service = self._client()
        found, gone = [], []
        for webhook_id in self._remembered():
            response = client.get(f"/api/Webhook/{webhook_id}")
            if response.status_code == 404:
                gone.append(webhook_id)
                continue
            raise_for_status(response, service)
            found.append(_subscription(response.json()))
        if gone:
            self._remember([i for i in self._remembered() if i not in gone])
        return found

    def unsubscribe(self, subscription_id: str) -> None:
        from core.http import raise_for_status

        client, service = self._client()
        response = client.delete(f"/api/Webhook/{subscription_id}")
        if response.status_code == 404:
            msg = f"Virtuous has no webhook {subscription_id}"
            raise ConnectorError(msg)
        raise_for_status(response, service)
        self._remember([i for i in self._remembered() if i != subscription_id])

    def _client(self) -> tuple[httpx.Client, Service]:
        if not self.settings.has_credential():
            msg = f"{self.name}: set api_key (or username and password) to reach Virtuous"
            raise ConnectorError(msg)
        return virtuous_client(self.settings, self.context)

    def _memory_key(self) -> str:
        key = self.settings.api_key
        credential = key.get_secret_value() if key else self.settings.username or ""
        return fingerprint(self.settings.base_url.rstrip("/"), credential)

    def _remembered(self) -> list[str]:
        ids = self.context.state.cache_get(_MEMORY, self._memory_key(), float("inf"))
        return [str(i) for i in ids] if isinstance(ids, list) else []

    def _remember(self, ids: list[str]) -> None:
        self.context.state.cache_put(_MEMORY, self._memory_key(), ids)


def _toggle(event: str) -> str:
    """The subscription's switch for ``event``: ``GiftCreate`` -> ``giftCreate``."""
    return event[0].lower() + event[1:]


def _subscription(body: Any) -> Subscription:
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        msg = f"Virtuous answered a webhook request without its id: {str(body)[:200]}"
        raise ConnectorError(msg)
    events = [e for e in EVENT_OBJECTS if body.get(_toggle(e)) is True]
    return Subscription(str(body["id"]), str(body.get("payloadUrl") or ""), events)


def _other_event(kind: str, body: dict[str, Any]) -> Event:
    """An event of a type this source does not take (ProjectCreate, FormSubmission...): kept as
    it came, keyed apart from contacts and gifts, so the server acknowledges and ignores it
    rather than refusing a delivery Virtuous would then retry."""
    name, obj = next(((k, v) for k, v in body.items() if isinstance(v, dict)), (kind, body))
    return Event(kind, f"{name}:{obj.get('id', '')}", dict(obj))
