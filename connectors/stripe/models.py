"""The part of Stripe's published charge and refund shapes the sources and recipes rely on.

``stripe.charges`` and ``stripe.refunds`` check every record against these models
(:class:`core.contract.ContractCheck`): a charge whose ``amount`` is missing, or text, or a
fraction would otherwise be mis-read as money (``"2500"`` taken for 25.00), so it is
dead-lettered naming the field, and the run goes on. The types are those of Stripe's OpenAPI
(``tests/contracts/schemas/stripe/``): amounts are integers in minor units, ``created`` is Unix
seconds, expandable fields are an id or the object. Extra keys are allowed: Stripe adds fields
without notice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Expanding(_Open):
    """An object with expandable fields: each holds an id (any string passes) or the object,
    which is checked. Declared as ``Model | None`` so that an error names the field plainly
    (``charge.amount``), not a branch of a union."""

    expandable: ClassVar[tuple[str, ...]]

    @model_validator(mode="before")
    @classmethod
    def _ids_pass(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ids = {name: None for name in cls.expandable if isinstance(data.get(name), str)}
        return {**data, **ids} if ids else data


class BalanceTransaction(_Open):
    """An expanded ``balance_transaction``: the fee and net a gift records."""

    fee: StrictInt
    net: StrictInt
    currency: StrictStr


class Customer(_Open):
    """An expanded ``customer``: who gave."""

    id: StrictStr
    email: StrictStr | None = None
    name: StrictStr | None = None


class Charge(_Expanding):
    """A charge, as far as a gift depends on it."""

    expandable = ("balance_transaction", "customer")

    id: StrictStr
    created: StrictInt
    amount: StrictInt
    amount_refunded: StrictInt
    currency: StrictStr
    status: StrictStr  # succeeded, pending or failed (the spec's enum)
    captured: StrictBool
    refunded: StrictBool
    metadata: dict[str, StrictStr]
    balance_transaction: BalanceTransaction | None = None
    customer: Customer | None = None


class RefundedCharge(_Open):
    """The expanded ``charge`` of a refund: what the reversal is measured against."""

    id: StrictStr
    amount: StrictInt
    currency: StrictStr


class Refund(_Expanding):
    """A refund, as far as a reversal depends on it."""

    expandable = ("charge",)

    id: StrictStr
    created: StrictInt
    amount: StrictInt
    currency: StrictStr
    status: StrictStr
    charge: RefundedCharge | None
