"""``virtuous.gift_reversals``: refunds become reversing transactions on the original gift."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel

from connectors.virtuous.models import GiftReversal
from connectors.virtuous.service import VirtuousSettings
from connectors.virtuous.sink import OneByOne
from connectors.virtuous.transactions import check_single
from core.outcomes import Outcome, WriteItem, WriteResult


class GiftReversals(OneByOne):
    """Finds the gift by its transactionSource and transactionId, then posts
    ``/api/Gift/ReversingTransaction``. A gift not imported yet, or a partial refund (Virtuous
    reverses whole gifts), is ``needs_review``; ``connector dlq retry`` tries again later."""

    name: ClassVar[str] = "virtuous.gift_reversals"
    Settings: ClassVar[type[BaseModel]] = VirtuousSettings
    Model: ClassVar[type[BaseModel] | None] = GiftReversal
    description: ClassVar[str] = "refunds as reversing transactions on the original gift"
    settings: VirtuousSettings

    def money(self, payload: dict[str, Any]) -> tuple[str, Decimal] | None:  # type: ignore[override]
        return None  # a reversal moves the original gift's money back; counted there

    def write_one(self, item: WriteItem) -> WriteResult:
        payload = item.payload
        source, txn = payload["transactionSource"], payload["transactionId"]
        path = f"/api/Gift/{quote(str(source), safe='')}/{quote(str(txn), safe='')}"
        found = self.client.get(path)
        if found.status_code == 404:
            reason = (
                f"gift {source}/{txn} is not in Virtuous yet (still in the import?);"
                " `connector dlq retry` tries again"
            )
            return WriteResult(item.key, Outcome.NEEDS_REVIEW, reason=reason)
        check_single(found, self.service)
        gift = found.json()
        refunded = Decimal(str(payload.get("amount") or gift["amount"]))
        if refunded < Decimal(str(gift["amount"])):
            reason = (
                f"partial refund of {refunded} on gift {gift['id']} of {gift['amount']};"
                " Virtuous reverses whole gifts, so adjust this one by hand"
            )
            return WriteResult(
                item.key, Outcome.NEEDS_REVIEW, sink_key=str(gift["id"]), reason=reason
            )
        body = {
            "reversedGiftId": gift["id"],
            "giftDate": payload["giftDate"],
            "notes": payload.get("notes") or f"Refund of {source} {txn}",
        }
        # Not marked idempotent: nothing in the body lets Virtuous spot a repeated reversal.
        response = self.client.post("/api/Gift/ReversingTransaction", json=body)
        if response.status_code == 400 and "revers" in response.text.lower():
            return WriteResult(
                item.key, Outcome.UNCHANGED, sink_key=str(gift["id"]), reason="already reversed"
            )
        check_single(response, self.service)
        return WriteResult(item.key, Outcome.WRITTEN, sink_key=str(response.json().get("id")))
