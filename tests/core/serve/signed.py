"""A webhook source for the server's tests: ``test.webhook``, HMAC-signed JSON deliveries.

A delivery is ``{"events": [{"id": ..., "type": ..., "record": {"id": ..., ...}}]}``, signed
with base64 HMAC-SHA256 of the raw body in ``X-Test-Signature`` (Virtuous's scheme). A record
with ``"gone": true`` has no current version (``refetch`` returns None); one with
``"unreachable": true`` cannot be read again (``refetch`` raises a retriable error).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from core import hookimpl
from core.errors import RetriableError
from core.outcomes import Outcome, WriteItem, WriteResult
from core.registry import Lazy
from core.sink import Sink
from core.source import Record
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
    hmac_sha256,
    same_secret,
)

SECRET = "test-webhook-secret"
HEADER = "x-test-signature"


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac_sha256(secret, body, "base64")


def delivery(*events: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A signed delivery's body and headers."""
    body = json.dumps({"events": list(events)}).encode()
    return body, {HEADER: sign(body), "content-type": "application/json"}


def event(
    record_id: str, *, type: str = "GiftCreate", event_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {"id": event_id, "type": type, "record": {"id": record_id, **fields}}


class SignedSource(WebhookSource):
    name: ClassVar[str] = "test.webhook"
    Settings: ClassVar[type[BaseModel]] = WebhookSettings
    validation_methods: ClassVar[frozenset[str]] = frozenset({"GET"})
    settings: WebhookSettings

    def verify(self, delivery: Delivery) -> None:
        given = delivery.headers.get(HEADER)
        if self.settings.secret is None or given is None:
            raise WebhookRejected(f"no {HEADER} header")
        expected = sign(delivery.body, self.settings.secret.get_secret_value())
        if not same_secret(given, expected):
            raise WebhookRejected("the signature does not match the body")

    def events(self, delivery: Delivery) -> list[Event]:
        try:
            items = json.loads(delivery.body)["events"]
            return [_event(item) for item in items]
        except (ValueError, KeyError, TypeError) as error:
            raise MalformedDelivery(f"not a delivery of events: {error}") from None

    def refetch(self, event: Event) -> Record | None:
        if event.record.get("unreachable"):
            raise RetriableError("the test service cannot be reached")
        return None if event.record.get("gone") else {**event.record, "refetched": True}


def _event(item: dict[str, Any]) -> Event:
    record = item["record"]
    return Event(type=item["type"], key=str(record["id"]), record=record, id=item.get("id"))


class SignedPlugin:
    @hookimpl
    def connector_register_sources(self) -> Iterable[Lazy]:
        return [Lazy("test.webhook", "tests.core.serve.signed:SignedSource")]

    @hookimpl
    def connector_register_sinks(self) -> Iterable[Lazy]:
        return [Lazy("test.switched", "tests.core.serve.signed:SwitchedSink")]


class SwitchSettings(BaseModel):
    path: str
    #: while this file exists the "service" is down
    down_flag: str


class SwitchedSink(Sink):
    """Appends payloads as JSON lines, or fails the whole batch while ``down_flag`` exists."""

    name: ClassVar[str] = "test.switched"
    Settings: ClassVar[type[BaseModel]] = SwitchSettings
    supports_update: ClassVar[bool] = True
    settings: SwitchSettings

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        if self.context.path(self.settings.down_flag).exists():
            raise RetriableError("the test service is down")
        with self.context.path(self.settings.path).open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(item.payload) + "\n" for item in batch)
        return [
            WriteResult(
                i.key, Outcome.UPDATED if i.is_update else Outcome.WRITTEN, maybe_sent=False
            )
            for i in batch
        ]
