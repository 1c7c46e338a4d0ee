"""What the emulated Givebutter account holds: transactions in every state, and its settings."""

from __future__ import annotations

import itertools
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import Field

from connectors.givebutter.emulator.shapes import (
    Kind,
    PartialRefund,
    apply_changes,
    fake_transaction,
    make_kind,
    refund,
    stamp,
)
from core.emulation import WebhookDeliverer, json_default
from core.emulation.records import Faker, Record, RecordId, RecordsSettings, RecordsState
from core.emulation.subscribers import Subscriber, Subscribers


class EmulatorSettings(RecordsSettings):
    api_keys: list[str] = Field(default_factory=lambda: ["emulator-givebutter-key"])
    requests_per_minute: int = Field(default=500, ge=1)
    rate_window_seconds: float = Field(default=60.0, gt=0)  # tests shorten the minute
    default_per_page: int = 20
    #: How a partial refund shows; Givebutter does not publish it (see ``shapes.PartialRefund``).
    partial_refunds: PartialRefund = "flag"
    # Givebutter publishes no retry schedule; its "coming soon" webhook pages plan these waits.
    webhook_retry_delays: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0, 43_200.0)
    webhook_delay_scale: float = Field(default=1.0, ge=0)  # tests run the schedule in ms
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)


@dataclass
class GivebutterState(RecordsState[EmulatorSettings]):
    """Everything the emulated account holds; tests may use it directly.

    Seeding and changes take the keys flat, as a reader of Givebutter's docs would name them
    (``refunded``, ``amount``); they land where the published shape keeps them (the nested entry
    for ``refunded``, both levels for ``amount``).

    Each transaction seeded as succeeded fires ``transaction.succeeded`` and each refund
    ``refund.created``, POSTed unsigned (Givebutter publishes no signature) to the webhooks that
    want them (:attr:`subscribers`, added through ``POST /_emulator/webhooks``; their URL carries
    the receiver's secret) as ``{"id", "type", "created_at", "data": <the transaction>}``, the
    envelope Givebutter's planned webhook pages describe (none is published).
    """

    collection = "transactions"
    default_seed = 7
    not_found = {"message": "Transaction not found."}

    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribers: Subscribers = field(init=False)
    #: Webhooks made through ``/v1/webhooks`` (``WebhookResource``), by id.
    webhooks: dict[str, Record] = field(default_factory=dict)
    _listening: dict[str, Subscriber] = field(default_factory=dict)

    def __post_init__(self) -> None:
        deliverer = WebhookDeliverer(
            "Givebutter",
            delays=self.settings.webhook_retry_delays,
            scale=self.settings.webhook_delay_scale,
            timeout=self.settings.webhook_timeout_seconds,
        )
        self.subscribers = Subscribers(deliverer)
        self._events = itertools.count(1)

    def faker(self, total: int) -> Faker:
        """An hour apart, from 30 days ago."""
        start = self.now() - timedelta(days=30)

        def fake(rng: random.Random, index: int, number: int) -> Record:
            return fake_transaction(rng, number, start + timedelta(hours=number))

        return fake

    def seed(
        self, count: int = 0, given: list[Record] | None = None, seed: int | None = None
    ) -> list[Record]:
        made = self._made(count, given, seed)
        self._announce_succeeded(made)
        return made

    def _made(
        self, count: int = 0, given: list[Record] | None = None, seed: int | None = None
    ) -> list[Record]:
        given = given or []
        made = super().seed(max(count, len(given)), None, seed)
        for record, changes in zip(made, given, strict=False):
            old_id = record["id"]
            apply_changes(record, changes)
            if record["id"] != old_id:  # a given id: keep the entry's and the index's in step
                record["transactions"][0]["id"] = record["id"]
                self.records[self.record_id(record["id"])] = self.records.pop(old_id)
        self.listings.changed()
        return made

    def seed_kinds(self, *kinds: Kind) -> list[Record]:
        """One transaction in each of ``kinds`` (``shapes.KINDS``: every state there is)."""
        made = self._made(count=len(kinds))
        mode = self.settings.partial_refunds
        for record, kind in zip(made, kinds, strict=True):
            make_kind(record, kind, self.now(), mode)
        self.listings.changed()
        self._announce_succeeded(made)
        return made

    def update(self, record_id: RecordId, changes: Record) -> Record:
        """Change a transaction as Givebutter would (an edit): ``updated_at`` moves."""
        record = apply_changes(self.records[record_id], changes)
        record["updated_at"] = stamp(self.now())
        self.listings.changed()
        return record

    def refund(self, record_id: RecordId, amount: Any = None) -> Record:
        """Refund a transaction, in full (``amount`` None) or in part, as the
        ``partial_refunds`` switch says Givebutter shows it; ``updated_at`` moves."""
        at = stamp(self.now())
        part = None if amount is None else float(amount)
        record = refund(self.records[record_id], part, at, self.settings.partial_refunds)
        record["updated_at"] = at
        self.listings.changed()
        self._announce("refund.created", record)
        return record

    def save_webhook(self, webhook: Record) -> Record:
        """Keep a webhook made or changed through the API; it is delivered to while enabled."""
        old = self._listening.pop(webhook["id"], None)
        if old is not None:
            self.subscribers.remove(old)
        self.webhooks[webhook["id"]] = webhook
        if webhook["enabled"]:
            self._listening[webhook["id"]] = self.subscribers.add(webhook["url"], webhook["events"])
        return webhook

    def delete_webhook(self, webhook_id: str) -> bool:
        if self.webhooks.pop(webhook_id, None) is None:
            return False
        listening = self._listening.pop(webhook_id, None)
        if listening is not None:
            self.subscribers.remove(listening)
        return True

    def _announce_succeeded(self, made: list[Record]) -> None:
        for record in made:
            if record["status"] == "succeeded":
                self._announce("transaction.succeeded", record)

    def _announce(self, event: str, record: Record) -> None:
        envelope = {
            "id": f"evt_emu{next(self._events):012d}",
            "type": event,
            "created_at": stamp(self.now()),
            "data": record,
        }
        body = json.dumps(envelope, default=json_default).encode()
        self.subscribers.announce(event, body, {"Content-Type": "application/json"})

    def reset(self) -> None:
        super().reset()
        self.windows.clear()
        self.subscribers.clear()
        self.webhooks.clear()
        self._listening.clear()
