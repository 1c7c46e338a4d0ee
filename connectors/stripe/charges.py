"""``stripe.charges``: charges (donations) with their fee and net, oldest first.

Each record is the charge as Stripe sends it (``charge.to_dict()``: amounts in minor units,
``currency`` lower-case, ``created`` in Unix seconds, ``metadata`` as set at checkout), plus
fields a recipe would otherwise dig for. A charge only authorized so far (Stripe calls it
succeeded, with ``captured`` false) is not money received: it is left out, unless
``uncaptured`` is on, and holds the cursor back until it is captured or expires. Added fields:

* ``fee``, ``net``, ``fee_currency``: from the expanded balance transaction, in minor units of
  ``fee_currency`` (the settlement currency, which may differ from the charge's);
* ``customer_id`` whether or not the customer is expanded, and ``customer_email`` /
  ``customer_name`` when ``expand_customer`` is on.
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
from connectors.stripe.models import Charge
from core.source import Record

if TYPE_CHECKING:
    import stripe


#: Every status a charge can have.
ChargeStatus = Literal["succeeded", "pending", "failed"]


class ChargesSettings(ListSettings):
    statuses: list[ChargeStatus] | None = Field(
        default_factory=lambda: list[ChargeStatus](["succeeded"]),
        description="charge statuses to read (succeeded, pending, failed); null reads all",
    )
    expand_balance_transaction: bool = Field(
        True, description="expand the balance transaction, for fee and net"
    )
    expand_customer: bool = Field(
        False, description="expand the customer, for customer_email and customer_name"
    )
    uncaptured: bool = Field(
        False,
        description="also read charges only authorized so far (status succeeded, captured "
        "false): no money has moved yet",
    )


class ChargesSource(CreatedWindowSource):
    """Charges created since ``start`` (or the last run), oldest first."""

    name: ClassVar[str] = "stripe.charges"
    Settings: ClassVar[type[BaseModel]] = ChargesSettings
    description: ClassVar[str] = "Stripe charges with fee and net, incrementally by creation time"
    contract: ClassVar[type[BaseModel]] = Charge
    settings: ChargesSettings

    def list_page(self, client: stripe.StripeClient, params: dict[str, Any]) -> Any:
        return client.v1.charges.list(params=params)  # type: ignore[arg-type]

    def expand(self) -> list[str]:
        paths = []
        if self.settings.expand_balance_transaction:
            paths.append("data.balance_transaction")
        if self.settings.expand_customer:
            paths.append("data.customer")
        return paths

    def keep(self, record: Mapping[str, Any]) -> bool:
        if not self.settings.uncaptured and _authorized_only(record):
            return False
        return statuses_kept(record, self.settings.statuses)

    def in_flux(self, record: Mapping[str, Any]) -> bool:
        # An authorization is captured (or expires) within days: until then it holds the
        # cursor, so the run after the capture reads it again, now as a gift.
        return super().in_flux(record) or (_authorized_only(record) and not record.get("refunded"))

    def to_record(self, obj: Any) -> Record:
        return charge_record(obj.to_dict())


def charge_record(charge: Record) -> Record:
    """A charge as Stripe sends it (``to_dict()`` of the SDK's object, or an event's
    ``data.object``) with the fields this source adds: ``fee``, ``net`` and ``fee_currency``
    when the balance transaction is expanded, ``customer_id`` always, ``customer_email`` and
    ``customer_name`` when the customer is expanded (None otherwise)."""
    record = dict(charge)
    txn = record.get("balance_transaction")
    txn = txn if isinstance(txn, Mapping) else {}
    record["fee"] = txn.get("fee")
    record["net"] = txn.get("net")
    record["fee_currency"] = txn.get("currency")
    customer = record.get("customer")
    record["customer_id"] = unexpanded_id(customer)
    details = customer if isinstance(customer, Mapping) else {}
    record["customer_email"] = details.get("email")
    record["customer_name"] = details.get("name")
    return record


def _authorized_only(record: Mapping[str, Any]) -> bool:
    """A charge Stripe reports as succeeded that is only an authorization: nothing captured.
    One that expired uncaptured stays so, with ``refunded`` set."""
    return record.get("status") == "succeeded" and record.get("captured") is False
