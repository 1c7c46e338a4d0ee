"""``virtuous.gift_reversals``: refunds become reversing transactions on the original gift."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, Field

from connectors.virtuous.models import Text, _Payload
from connectors.virtuous.service import VirtuousSettings
from connectors.virtuous.sink import OneByOne
from connectors.virtuous.transactions import check_single
from core.errors import RetriableError
from core.outcomes import Outcome, WriteItem, WriteResult

if TYPE_CHECKING:  # responses come with a run: `validate` imports this module, sends none
    import httpx

    from core.state import InFlight


class GiftReversal(_Payload):
    """A refund of a gift sent earlier: reversed in Virtuous once the gift exists."""

    transactionSource: str = Field(min_length=1)
    transactionId: str = Field(min_length=1, description="the ORIGINAL gift's transaction id")
    giftDate: date
    amount: Decimal | None = Field(default=None, gt=0, description="the refunded amount")
    originalAmount: Decimal | None = Field(default=None, gt=0)
    notes: Text = None


class GiftReversals(OneByOne):
    """Finds the gift by its transactionSource and transactionId, then posts
    ``/api/Gift/ReversingTransaction``. A refund of a gift not imported yet is ``needs_review``
    until ``connector dlq retry`` finds the gift; a partial refund (Virtuous reverses whole
    gifts) is ``needs_review`` for a person, who adjusts the gift, then runs ``dlq resolve``.

    Each refund is sent at most once, whatever Virtuous does with a repeat (nothing public says
    it refuses one): refunds go one per batch, each marked in flight before its request, and one
    a stopped run (or a lost answer) left in flight is never sent again automatically, since no
    documented read tells whether its reversal arrived. It is dead-lettered for a person instead.
    """

    name: ClassVar[str] = "virtuous.gift_reversals"
    Settings: ClassVar[type[BaseModel]] = VirtuousSettings
    Model: ClassVar[type[BaseModel] | None] = GiftReversal
    description: ClassVar[str] = "refunds as reversing transactions on the original gift"
    settings: VirtuousSettings

    @property
    def batch_size(self) -> int:
        return 1  # committed one by one: a crash leaves at most one refund in doubt

    def money(self, payload: dict[str, Any]) -> tuple[str, Decimal] | None:  # type: ignore[override]
        return None  # a reversal moves the original gift's money back; counted there

    def reference(self, item: WriteItem) -> str:
        return _gift_path(item.payload)

    def recover(self, stranded: Sequence[InFlight]) -> list[WriteResult]:
        """A refund whose gift Virtuous does not hold was never reversed: it is sent again.
        Any other is left for a person: its reversal may have arrived."""
        results = []
        for item in stranded:
            try:
                if self._look_up(item.sink_ref or _gift_path(item.payload)).status_code == 404:
                    continue
            except RetriableError:
                pass  # Virtuous cannot say now: in doubt, like the rest
            source, txn = item.payload["transactionSource"], item.payload["transactionId"]
            reason = (
                f"the reversal of gift {source}/{txn} was sent by a run that stopped (or lost"
                " Virtuous's answer) before it was recorded, and Virtuous cannot be asked whether"
                " it arrived: look for a reversing transaction on that gift in Virtuous and add"
                " one by hand if there is none, then `connector dlq resolve` it; it is not sent"
                " again, so it is never made twice"
            )
            results.append(WriteResult(item.key, Outcome.NEEDS_REVIEW, reason=reason))
        return results

    def write_one(self, item: WriteItem) -> WriteResult:
        gift = self._reversible(item)
        if isinstance(gift, WriteResult):
            return gift
        payload = item.payload
        source, txn = payload["transactionSource"], payload["transactionId"]
        body = {
            "reversedGiftId": gift["id"],
            "giftDate": payload["giftDate"],
            "notes": payload.get("notes") or f"Refund of {source} {txn}",
        }
        # Not marked idempotent: nothing in the body lets Virtuous spot a repeated reversal.
        response = self.client.post("/api/Gift/ReversingTransaction", json=body)
        check_single(response, self.service)
        return WriteResult(item.key, Outcome.WRITTEN, sink_key=str(response.json().get("id")))

    def preview_one(self, item: WriteItem) -> WriteResult:
        gift = self._reversible(item)
        return gift if isinstance(gift, WriteResult) else WriteResult(item.key, Outcome.WRITTEN)

    def _reversible(self, item: WriteItem) -> dict[str, Any] | WriteResult:
        """The gift ``item`` reverses, or why it cannot be reversed now (a look-up only)."""
        payload = item.payload
        source, txn = payload["transactionSource"], payload["transactionId"]
        try:
            found = self._look_up(_gift_path(payload))
        except RetriableError as error:  # nothing was reversed: the record is not in doubt
            return WriteResult(item.key, Outcome.FAILED, reason=str(error), maybe_sent=False)
        if found.status_code == 404:
            reason = (
                f"gift {source}/{txn} is not in Virtuous yet (still in the import?): once it is,"
                " `connector dlq retry` reverses it; a gift never sent (refunded first) has"
                " nothing to reverse: `connector dlq resolve` records that"
            )
            return WriteResult(item.key, Outcome.NEEDS_REVIEW, reason=reason)
        check_single(found, self.service)
        gift: dict[str, Any] = found.json()
        refunded = Decimal(str(payload.get("amount") or gift["amount"]))
        if refunded < Decimal(str(gift["amount"])):
            reason = (
                f"partial refund of {refunded} on gift {gift['id']} of {gift['amount']};"
                " Virtuous reverses whole gifts, so adjust this one by hand, then"
                " `connector dlq resolve` it"
            )
            return WriteResult(
                item.key, Outcome.NEEDS_REVIEW, sink_key=str(gift["id"]), reason=reason
            )
        return gift

    def _look_up(self, path: str) -> httpx.Response:
        from core.http import raise_for_status

        found = self.client.get(path)
        if found.status_code >= 500 or found.status_code == 429:
            raise_for_status(found, self.service)
        return found


def _gift_path(payload: dict[str, Any]) -> str:
    """``/api/Gift/<transactionSource>/<transactionId>``: the gift a refund reverses."""
    source, txn = payload["transactionSource"], payload["transactionId"]
    return f"/api/Gift/{quote(str(source), safe='')}/{quote(str(txn), safe='')}"
