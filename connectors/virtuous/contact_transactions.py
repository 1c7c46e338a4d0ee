"""``virtuous.contact_transactions``: contacts into Virtuous's import, to create or merge."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, Field

from connectors.virtuous.contact_models import ContactTransaction
from connectors.virtuous.service import VirtuousSettings
from connectors.virtuous.sink import VirtuousSink
from connectors.virtuous.transactions import IDEMPOTENT, write_batch
from core.outcomes import Outcome, WriteItem, WriteResult

if TYPE_CHECKING:  # responses come with a run: `validate` imports this module, sends none
    import httpx


class ContactTransactionSettings(VirtuousSettings):
    batch_size: int = Field(default=100, ge=1, le=1000)
    reference_source: str | None = Field(
        default=None, description="referenceSource when the mapping sets none"
    )


class ContactTransactions(VirtuousSink):
    """``POST /api/Contact/Transaction`` for one, ``POST /api/Contact/Batch`` for many.

    The import merges a transaction into the contact it matches, so sending a changed record
    again is how a contact is updated.
    """

    name: ClassVar[str] = "virtuous.contact_transactions"
    Settings: ClassVar[type[BaseModel]] = ContactTransactionSettings
    Model: ClassVar[type[BaseModel] | None] = ContactTransaction
    supports_update: ClassVar[bool] = True
    description: ClassVar[str] = "contacts into Virtuous's nightly import (create or merge)"
    settings: ContactTransactionSettings

    def prepare(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        filled = dict(payload)
        if not filled.get("referenceSource") and self.settings.reference_source:
            filled["referenceSource"] = self.settings.reference_source
        if filled.get("referenceSource") and not filled.get("referenceId"):
            filled["referenceId"] = key
        return filled

    @classmethod
    def pending(cls, sink_key: str | None) -> bool:
        return (sink_key or "").startswith("ref/")  # in the import until it runs

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        results: list[WriteResult] = []
        by_source = sorted(batch, key=_reference_source)
        for _, group in groupby(by_source, key=_reference_source):
            results.extend(write_batch(list(group), self._send, self.service, _reference))
        return [_as_update(result, batch) for result in results]

    def _send(self, items: Sequence[WriteItem]) -> httpx.Response:
        # Sent twice, a contact the import can match (by reference or email) is merged twice
        # into one contact: harmless. One it cannot match would become two contacts.
        retry = IDEMPOTENT if all(matchable(item.payload) for item in items) else {}
        if len(items) == 1:
            return self.client.post(
                "/api/Contact/Transaction", json=items[0].payload, extensions=retry
            )
        return self.client.post(
            "/api/Contact/Batch",
            json={
                "referenceSource": items[0].payload.get("referenceSource"),
                "contacts": [item.payload for item in items],
            },
            extensions=retry,
        )


def matchable(payload: dict[str, Any]) -> bool:
    """Whether the import will match this contact to the same record every time it is sent:
    it carries the dedup key (referenceSource + referenceId) or an email."""
    return bool(payload.get("referenceSource") and payload.get("referenceId")) or bool(
        payload.get("email")
    )


def _reference_source(item: WriteItem) -> str:
    return str(item.payload.get("referenceSource") or "")


def _reference(item: WriteItem) -> str:
    source = item.payload.get("referenceSource") or ""
    reference = item.payload.get("referenceId") or ""
    return f"ref/{quote(str(source), safe='')}/{quote(str(reference), safe='')}"


def _as_update(result: WriteResult, batch: Sequence[WriteItem]) -> WriteResult:
    updates = {item.key for item in batch if item.is_update}
    if result.outcome is Outcome.WRITTEN and result.key in updates:
        return WriteResult(result.key, Outcome.UPDATED, result.sink_key)
    return result
