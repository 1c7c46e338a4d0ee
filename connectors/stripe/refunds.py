"""``stripe.refunds``: refunds with the charge they return money from, oldest first.

Each record is the refund as Stripe sends it (``amount`` is the refunded amount in minor units of
``currency``) with ``charge`` expanded, so a recipe can name the original gift
(``record.charge.id``) and tell a partial refund (``record.amount < record.charge.amount``) from a
full one. ``charge_id`` is there whether or not the charge could be expanded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from connectors.stripe.listing import (
    CreatedWindowSource,
    ListSettings,
    statuses_kept,
    unexpanded_id,
)
from connectors.stripe.models import Refund
from core.source import Record

if TYPE_CHECKING:
    import stripe


#: Every status a refund can have.
RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]


class RefundsSettings(ListSettings):
    statuses: list[RefundStatus] | None = Field(
        default_factory=lambda: list[RefundStatus](["succeeded"]),
        description="refund statuses to read (succeeded, pending, failed, canceled); null: all",
    )


class RefundsSource(CreatedWindowSource):
    """Refunds created since ``start`` (or the last run), oldest first, charge expanded."""

    name: ClassVar[str] = "stripe.refunds"
    Settings: ClassVar[type[BaseModel]] = RefundsSettings
    description: ClassVar[str] = "Stripe refunds with their charge, incrementally by creation time"
    # A refund waiting for the customer's bank details can still succeed or fail.
    unsettled: ClassVar[frozenset[str]] = frozenset({"pending", "requires_action"})
    contract: ClassVar[type[BaseModel]] = Refund
    settings: RefundsSettings

    def list_page(self, client: stripe.StripeClient, params: dict[str, Any]) -> Any:
        return client.v1.refunds.list(params=params)  # type: ignore[arg-type]

    def expand(self) -> list[str]:
        return ["data.charge"]

    def keep(self, record: Mapping[str, Any]) -> bool:
        return statuses_kept(record, self.settings.statuses)

    def to_record(self, obj: Any) -> Record:
        record: Record = obj.to_dict()
        record["charge_id"] = unexpanded_id(record.get("charge"))
        return record
