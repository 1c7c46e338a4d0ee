"""What the emulated Givebutter account holds: transactions in every state, and its settings."""

from __future__ import annotations

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
from core.emulation.records import Faker, Record, RecordId, RecordsSettings, RecordsState


class EmulatorSettings(RecordsSettings):
    api_keys: list[str] = Field(default_factory=lambda: ["emulator-givebutter-key"])
    requests_per_minute: int = Field(default=500, ge=1)
    rate_window_seconds: float = Field(default=60.0, gt=0)  # tests shorten the minute
    default_per_page: int = 20
    #: How a partial refund shows; Givebutter does not publish it (see ``shapes.PartialRefund``).
    partial_refunds: PartialRefund = "flag"


@dataclass
class GivebutterState(RecordsState[EmulatorSettings]):
    """Everything the emulated account holds; tests may use it directly.

    Seeding and changes take the keys flat, as a reader of Givebutter's docs would name them
    (``refunded``, ``amount``); they land where the published shape keeps them (the nested entry
    for ``refunded``, both levels for ``amount``).
    """

    collection = "transactions"
    default_seed = 7
    not_found = {"message": "Transaction not found."}

    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def faker(self, total: int) -> Faker:
        """An hour apart, from 30 days ago."""
        start = self.now() - timedelta(days=30)

        def fake(rng: random.Random, index: int, number: int) -> Record:
            return fake_transaction(rng, number, start + timedelta(hours=number))

        return fake

    def seed(
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
        return made

    def seed_kinds(self, *kinds: Kind) -> list[Record]:
        """One transaction in each of ``kinds`` (``shapes.KINDS``: every state there is)."""
        made = self.seed(count=len(kinds))
        mode = self.settings.partial_refunds
        for record, kind in zip(made, kinds, strict=True):
            make_kind(record, kind, self.now(), mode)
        return made

    def update(self, record_id: RecordId, changes: Record) -> Record:
        """Change a transaction as Givebutter would (an edit): ``updated_at`` moves."""
        record = apply_changes(self.records[record_id], changes)
        record["updated_at"] = stamp(self.now())
        return record

    def refund(self, record_id: RecordId, amount: Any = None) -> Record:
        """Refund a transaction, in full (``amount`` None) or in part, as the
        ``partial_refunds`` switch says Givebutter shows it; ``updated_at`` moves."""
        at = stamp(self.now())
        part = None if amount is None else float(amount)
        record = refund(self.records[record_id], part, at, self.settings.partial_refunds)
        record["updated_at"] = at
        return record

    def reset(self) -> None:
        super().reset()
        self.windows.clear()
