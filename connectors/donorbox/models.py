"""The part of Donorbox's documented donation the recipes rely on.

Donorbox publishes no schema, only two sample donations in its API README (Stripe and PayPal,
``donorbox/donorbox-api`` commit e6b4daf). ``donorbox.donations`` checks every record against
:class:`Donation` (:class:`core.contract.ContractCheck`): a donation whose amount is not a decimal
string, whose ``amount_refunded`` is missing (a refund would go unseen) or whose donor lacks its
name fields is dead-lettered naming the field instead of being guessed at. Extra keys are allowed:
Donorbox adds fields without notice. The donor has no ``phone`` in a donation (only ``/donors``
and ``/plans`` show one), so nothing here or in the recipes reads it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

#: A decimal amount as the samples send it: text such as ``"100.0"``, never a JSON number.
DecimalText = Annotated[StrictStr, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$")]


class Campaign(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: StrictInt
    name: StrictStr


class Donor(BaseModel):
    """The donor as a donation embeds it. Every key is in both samples (``address_line_2`` only
    in the Stripe one), so each must be there, even when null."""

    model_config = ConfigDict(extra="allow")

    id: StrictInt
    first_name: StrictStr | None
    last_name: StrictStr | None
    email: StrictStr | None
    address: StrictStr | None
    address_line_2: StrictStr | None = None
    city: StrictStr | None
    state: StrictStr | None
    zip_code: StrictStr | None
    country: StrictStr | None


class Donation(BaseModel):
    """A ``GET /api/v1/donations`` item, as far as a gift or a refund depends on it."""

    model_config = ConfigDict(extra="allow")

    id: StrictInt
    status: StrictStr  # only "paid" is documented
    amount: DecimalText
    amount_refunded: DecimalText  # "0.0" when nothing was given back
    currency: StrictStr
    donation_date: StrictStr
    donation_type: StrictStr  # "stripe", "paypal" in the samples
    recurring: StrictBool
    processing_fee: StrictInt | StrictFloat  # a JSON number, unlike the amounts
    stripe_charge_id: StrictStr | None = None  # Stripe donations only
    designation: StrictStr | None = None  # in the Stripe sample only
    comment: StrictStr | None
    campaign: Campaign
    donor: Donor
