"""Pydantic models of the gifts the Virtuous connector sends, with Virtuous's field names and
casing; the contacts' are in :mod:`connectors.virtuous.contact_models` and the refund's in
:mod:`connectors.virtuous.gift_reversals`, so that validating a gift recipe builds none of them.

The gift transaction's contact uses ``firstname``/``lastname``; the contact transaction uses
``firstName``/``lastName``. Amounts are Decimal (sent as strings, "25.00"); dates are dates.

Unlike the rest of the project, this module's annotations are evaluated as the classes are
defined (no ``from __future__ import annotations``): pydantic would otherwise compile and
evaluate each field's annotation string, about a millisecond of every ``connector validate``
of a gift recipe.
"""

from datetime import date
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.virtuous.vocabulary import GIFT_TYPE_ALIASES, GIFT_TYPE_NAMES, Frequency

# Names and aliases alike: the import maps an alias to its name.
GIFT_TYPES = frozenset(GIFT_TYPE_NAMES) | frozenset(GIFT_TYPE_ALIASES)

Text = str | None


class _Payload(BaseModel):
    # Each validator is built when first used, not by every command that imports the models.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Address(_Payload):
    address1: Text = None
    address2: Text = None
    city: Text = None
    state: Text = None
    postal: Text = None
    country: Text = None


class GiftContact(_Payload):
    """Who gave: matched by Virtuous on id, reference, email, name and address."""

    id: int | None = None
    referenceId: Text = None
    name: Text = None
    type: Text = None
    title: Text = None
    firstname: Text = None
    middlename: Text = None
    lastname: Text = None
    suffix: Text = None
    emailType: Text = None
    email: Text = None
    phoneType: Text = None
    phone: Text = None
    address: Address | None = None
    tags: Text = Field(default=None, description="semicolon-separated")
    emailLists: list[str] | None = None
    birthMonth: int | None = None
    birthDay: int | None = None
    birthYear: int | None = None

    @model_validator(mode="after")
    def _identifiable(self) -> Self:
        if not (
            self.id
            or self.referenceId
            or self.email
            or self.name
            or (self.firstname and self.lastname)
        ):
            msg = "needs an id, referenceId, email, name, or firstname and lastname"
            raise ValueError(msg)
        return self


class Designation(_Payload):
    """A project the gift funds, by the project's id, code or name."""

    id: int | None = None
    name: Text = None
    code: Text = None
    amountDesignated: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _names_a_project(self) -> Self:
        if not (self.id or self.code or self.name):
            msg = "a designation needs the project's id, code or name"
            raise ValueError(msg)
        return self


class TributeDedication(_Payload):
    tributeId: int | None = None
    tributeType: Literal["In Honor Of", "In Memory Of"] | None = None
    tributeFirstName: Text = None
    tributeLastName: Text = None
    tributeCity: Text = None
    tributeState: Text = None
    acknowledgeeIndividualId: int | None = None
    acknowledgeeFirstName: Text = None
    acknowledgeeLastName: Text = None
    acknowledgeeAddress: Text = None
    acknowledgeeCity: Text = None
    acknowledgeeState: Text = None
    acknowledgeePostal: Text = None
    acknowledgeeEmail: Text = None
    acknowledgeePhone: Text = None


class GiftTransaction(_Payload):
    """``POST /api/v2/Gift/Transaction(s)``: a gift for the nightly import."""

    transactionSource: str = Field(min_length=1, max_length=100)
    transactionId: str = Field(min_length=1, max_length=100)
    contact: GiftContact
    giftDate: date
    giftType: str
    amount: Decimal = Field(gt=0, max_digits=15, decimal_places=3)
    currencyCode: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    exchangeRate: Decimal | None = Field(default=None, gt=0)
    frequency: Frequency | None = None
    recurringGiftTransactionId: Text = None
    recurringGiftTransactionUpdate: bool | None = None
    pledgeFrequency: Frequency | None = None
    pledgeTransactionId: Text = None
    pledgeExpectedFullfillmentDate: date | None = None
    cancelDate: date | None = None
    batch: Text = None
    notes: Text = None
    segment: Text = Field(default=None, description="the segment's code")
    mediaOutlet: Text = None
    receiptDate: date | None = None
    receiptSegment: Text = None
    cashAccountingCode: Text = None
    tribute: Text = None
    tributeDedication: TributeDedication | None = None
    isPrivate: bool | None = None
    isTaxDeductible: bool | None = None
    checkNumber: Text = None
    creditCardType: Text = None
    submissionUrl: Text = None
    contactIndividualId: int | None = None
    designations: list[Designation] | None = None
    customFields: dict[str, str] | None = None
    passthroughContact: GiftContact | None = None

    @field_validator("giftType")
    @classmethod
    def _known_gift_type(cls, value: str) -> str:
        if value not in GIFT_TYPES:
            msg = f"unknown gift type {value!r}; valid: {', '.join(sorted(GIFT_TYPES))}"
            raise ValueError(msg)
        return value

    @field_validator("customFields", mode="before")
    @classmethod
    def _custom_values_are_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                k: v if isinstance(v, str) else str(v) for k, v in value.items() if v is not None
            }
        return value

    @model_validator(mode="after")
    def _designations_fit(self) -> Self:
        if self.designations:
            total = sum((d.amountDesignated for d in self.designations), Decimal(0))
            if total > self.amount:
                msg = f"designations total {total}, more than the gift's amount {self.amount}"
                raise ValueError(msg)
        return self
