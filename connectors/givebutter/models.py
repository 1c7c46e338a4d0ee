"""The part of Givebutter's published transaction shape the recipes rely on.

Givebutter's OpenAPI (``TransactionResource``) keeps ``captured``, ``refunded`` and
``refunded_at`` on each entry of a list item's nested ``transactions`` array, not on the item:
a recipe that looked for them at the top level would read ``None`` and take a refunded donation
for a gift. ``givebutter.transactions`` checks every record against :class:`Transaction`
(:class:`core.contract.ContractCheck`), so a record that lacks the entry, or whose flags are not
booleans, is dead-lettered naming the field instead of being guessed at. Extra keys are allowed:
Givebutter adds fields without notice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, StrictStr


def _json_number(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        msg = f"should be a number, not {type(value).__name__}"
        raise ValueError(msg)  # pydantic reports a ValueError as a validation error
    return Decimal(str(value))


#: A JSON number (Givebutter sends major units: ``25.5``); never text, never a boolean.
Amount = Annotated[Decimal, PlainValidator(_json_number)]


class TransactionEntry(BaseModel):
    """One entry of ``transactions[]``: whether the money was captured, and refunded."""

    model_config = ConfigDict(extra="allow")

    amount: Amount
    captured: StrictBool
    refunded: StrictBool
    refunded_at: StrictStr | None


class Transaction(BaseModel):
    """A ``GET /v1/transactions`` list item, as far as a gift or a refund depends on it."""

    model_config = ConfigDict(extra="allow")

    id: StrictStr
    status: StrictStr  # succeeded, authorized, failed or cancelled (documented)
    amount: Amount
    is_recurring: StrictBool
    updated_at: StrictStr
    transactions: list[TransactionEntry] = Field(min_length=1)
