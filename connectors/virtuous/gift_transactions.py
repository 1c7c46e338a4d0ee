"""``virtuous.gift_transactions``: gifts into Virtuous's import, batched, each sent once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from connectors.virtuous.models import GiftTransaction
from connectors.virtuous.service import VirtuousSettings
from connectors.virtuous.sink import VirtuousSink
from core.outcomes import WriteItem, WriteResult

if TYPE_CHECKING:  # what a run needs: `validate` imports this module and needs none of it
    import httpx

    from connectors.virtuous.designations import DesignationCheck
    from core.state import InFlight


class GiftTransactionSettings(VirtuousSettings):
    """The Virtuous settings, the designation check's, and the batches'. The check itself
    (:mod:`connectors.virtuous.designations`) comes with a run's first designated gift."""

    check_designations: bool = Field(
        default=True,
        description="dead-letter a gift whose designation matches no Virtuous project",
    )
    projects_cache_minutes: float = Field(
        default=60,
        ge=0,
        description="how long the projects read from Virtuous are reused (0: read every run)",
    )
    inactive_projects: Literal["accept", "refuse"] = Field(
        default="accept",
        description="a designation of an inactive project: send it (logged), or dead-letter it",
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="transactions per request")
    batches_in_flight: int = Field(
        default=2,
        ge=1,
        le=8,
        description="batches awaiting Virtuous's answer at once; the next is always prepared"
        " meanwhile (a repeated transactionId is refused, so concurrent batches double no gift)",
    )
    transaction_source: str | None = Field(
        default=None,
        description="transactionSource when the mapping sets none (else the recipe's name)",
    )


TRANSACTION_PREFIX = "txn/"


def transaction_ref(payload: dict[str, Any]) -> str:
    """The ledger's sink key until the import creates the gift: ``txn/<source>/<id>``."""
    source, txn = payload["transactionSource"], payload["transactionId"]
    return f"{TRANSACTION_PREFIX}{quote(str(source), safe='')}/{quote(str(txn), safe='')}"


class GiftTransactions(VirtuousSink):
    """``POST /api/v2/Gift/Transactions``. A transaction cannot be changed once submitted, so a
    changed source record is ``needs_review``; Virtuous refuses a repeated transactionId, which
    makes every retry safe."""

    name: ClassVar[str] = "virtuous.gift_transactions"
    Settings: ClassVar[type[BaseModel]] = GiftTransactionSettings
    Model: ClassVar[type[BaseModel] | None] = GiftTransaction
    fills: ClassVar[frozenset[str]] = frozenset({"transactionId", "transactionSource"})
    supports_update: ClassVar[bool] = False
    description: ClassVar[str] = "gifts into Virtuous's nightly import"
    settings: GiftTransactionSettings

    def prepare(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Every transaction carries the dedup pair: the id defaults to the source key, the
        source to the ``transaction_source`` setting, then to the recipe's name. A gift whose
        designation names no Virtuous project is refused here, before anything is sent."""
        filled = dict(payload)
        if not filled.get("transactionId"):
            filled["transactionId"] = key
        if not filled.get("transactionSource"):
            filled["transactionSource"] = self.settings.transaction_source or self.context.recipe
        self.designations.check(key, filled)
        return filled

    @cached_property
    def designations(self) -> DesignationCheck:
        """Reads Virtuous's projects at the first designation of the run (a dry run too)."""
        from connectors.virtuous.designations import DesignationCheck

        return DesignationCheck(self.settings, self.context)

    def money_day(self, payload: Mapping[str, Any]) -> str | None:
        return str(payload["giftDate"])[:10] if payload.get("giftDate") else None

    def funds(self, payload: Mapping[str, Any]) -> list[tuple[str, Decimal]]:
        return [
            (
                str(d.get("name") or d.get("code") or d.get("id")),
                Decimal(str(d["amountDesignated"])),
            )
            for d in payload.get("designations") or []
        ]

    @classmethod
    def pending(cls, sink_key: str | None) -> bool:
        return (sink_key or "").startswith(TRANSACTION_PREFIX)  # a gift: "gift/<id>"

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        from connectors.virtuous.transactions import write_gifts  # a run's, not validate's

        return write_gifts(batch, self._send, self.service, self.reference)

    def reference(self, item: WriteItem) -> str:
        return transaction_ref(item.payload)

    def recover(self, stranded: Sequence[InFlight]) -> list[WriteResult]:
        from connectors.virtuous.recovery import recover_gifts  # a run's, not validate's

        return recover_gifts(self.client, self.service, stranded)

    def _send(self, items: Sequence[WriteItem]) -> httpx.Response:
        # Not marked idempotent: write_gifts repeats a failed try itself, so that it knows a
        # refusal of the repeat means an earlier try arrived.
        if len(items) == 1:
            return self.client.post("/api/v2/Gift/Transaction", json=items[0].payload)
        return self.client.post(
            "/api/v2/Gift/Transactions",
            json={
                "transactionSource": items[0].payload["transactionSource"],
                "transactions": [item.payload for item in items],
            },
        )
