"""What a Donorbox donation looks like on the wire, from the README's two samples.

Source: ``donorbox/donorbox-api`` README (commit e6b4daf, 2024-04-16), "Output (Stripe)" and
"Output (PayPal)" under ``GET /api/v1/donations``; the contract test checks every answer against
``tests/contracts/schemas/donorbox/donation.json``. The store keeps each donation with every
documented key; :func:`rendered` gives it the key set a switch asks for and the status its refund
shows (both undocumented, hence the switches).
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

#: Which keys a donation carries. ``per_sample``: a Stripe donation has the Stripe sample's keys,
#: any other the PayPal sample's (no ``stripe_charge_id``, ``designation``, ``join_mailing_list``,
#: ``action``, billing address, or donor ``address_line_2``). ``all_documented``: every
#: documented key on every donation, null where it does not apply.
KeySet = Literal["per_sample", "all_documented"]

#: How a refund shows beyond ``amount_refunded`` (only ``paid`` is documented). ``stays_paid``:
#: the status stays ``paid`` (as the README's purchase sample shows a refunded purchase);
#: ``refunded``: a full refund turns it ``refunded``, a partial one leaves it ``paid``;
#: ``refunded_or_partially_refunded``: ``refunded`` or ``partially_refunded``.
RefundStatus = Literal["stays_paid", "refunded", "refunded_or_partially_refunded"]

#: The Stripe sample's keys, in its order.
STRIPE_KEYS = [
    "action",
    "campaign",
    "donor",
    "amount",
    "formatted_amount",
    "converted_amount",
    "formatted_converted_amount",
    "recurring",
    "first_recurring_donation",
    "amount_refunded",
    "formatted_amount_refunded",
    "stripe_charge_id",
    "id",
    "status",
    "donation_type",
    "donation_date",
    "anonymous_donation",
    "gift_aid",
    "designation",
    "join_mailing_list",
    "comment",
    "donating_company",
    "currency",
    "converted_currency",
    "utm_campaign",
    "utm_source",
    "utm_medium",
    "utm_term",
    "utm_content",
    "processing_fee",
    "formatted_processing_fee",
    "address",
    "address_line_2",
    "city",
    "state",
    "zip_code",
    "country",
    "employer",
    "occupation",
    "questions",
]
#: The PayPal sample's keys, in its order.
PAYPAL_KEYS = [
    "campaign",
    "donor",
    "amount",
    "formatted_amount",
    "converted_amount",
    "formatted_converted_amount",
    "recurring",
    "first_recurring_donation",
    "amount_refunded",
    "formatted_amount_refunded",
    "paypal_transaction_id",
    "id",
    "status",
    "donation_type",
    "donation_date",
    "anonymous_donation",
    "gift_aid",
    "comment",
    "donating_company",
    "currency",
    "converted_currency",
    "utm_campaign",
    "utm_source",
    "utm_medium",
    "utm_term",
    "utm_content",
    "processing_fee",
    "formatted_processing_fee",
    "questions",
]
ALL_KEYS = list(dict.fromkeys([*STRIPE_KEYS, *PAYPAL_KEYS]))
#: The donor as the Stripe sample embeds it (the PayPal one lacks ``address_line_2``); no phone.
DONOR_KEYS = [
    "id",
    "name",
    "first_name",
    "last_name",
    "email",
    "address",
    "address_line_2",
    "city",
    "state",
    "zip_code",
    "country",
    "employer",
    "occupation",
]
PAYPAL_DONOR_KEYS = [k for k in DONOR_KEYS if k != "address_line_2"]


def stamp(moment: datetime) -> str:
    """Donorbox's timestamps: Rails' ISO 8601 in UTC with milliseconds and ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def money(value: Decimal | float | str) -> str:
    """Rails' BigDecimal#to_s as the samples show it: ``"100.0"``, ``"12.5"``, ``"10.25"``."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text if "." in text else text + ".0"


def formatted(value: Decimal | float | str) -> str:
    """The samples' display amounts: ``"$100"``, ``"$0.59"``."""
    amount = Decimal(str(value))
    return f"${amount:,.0f}" if amount == amount.to_integral() else f"${amount:,.2f}"


def refund_status(donation: dict[str, Any], shows: RefundStatus) -> str:
    """The status a paid donation shows with what ``amount_refunded`` says was given back."""
    status = str(donation.get("status"))
    if status != "paid" or shows == "stays_paid":
        return status
    try:
        refunded = Decimal(str(donation.get("amount_refunded") or 0))
        amount = Decimal(str(donation.get("amount") or 0))
    except ArithmeticError:
        return status  # a test's deliberately broken record is shown as it was seeded
    if refunded <= 0:
        return status
    if refunded >= amount:
        return "refunded"
    return "partially_refunded" if shows == "refunded_or_partially_refunded" else status


def rendered(donation: dict[str, Any], keys: KeySet, shows: RefundStatus) -> dict[str, Any]:
    """The donation as the API answers it under the two switches."""
    by_stripe = donation.get("donation_type") == "stripe"
    wanted = ALL_KEYS if keys == "all_documented" else STRIPE_KEYS if by_stripe else PAYPAL_KEYS
    body = {key: donation[key] for key in wanted if key in donation}
    if "status" in body:
        body["status"] = refund_status(donation, shows)
    donor = donation.get("donor")
    if isinstance(donor, dict):
        wanted = DONOR_KEYS if keys == "all_documented" or by_stripe else PAYPAL_DONOR_KEYS
        body["donor"] = {key: donor[key] for key in wanted if key in donor}
    return body


_PEOPLE = [
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
    ("Katherine", "Johnson"),
    ("Alan", "Turing"),
    ("Mary", "Jackson"),
    ("Dorothy", "Vaughan"),
    ("Rosalind", "Franklin"),
    ("Hedy", "Lamarr"),
]
_PLACES = [
    ("123 6th St.", "Lakeside Road", "Melbourne", "FL", "32904"),
    ("400 Larimer St", None, "Denver", "CO", "80202"),
    ("9 Elm Ave", "Apt 4", "Austin", "TX", "78701"),
    ("77 Pine Rd", None, "Portland", "OR", "97205"),
]
_CAMPAIGNS = [(1, "General Giving"), (2, "Clean Water 2025")]
_DESIGNATIONS = ["General Fund", "Scholarships", None]
_QUESTIONS = [
    {"question_type": "radiobutton", "question": "Would you like to volunteer?", "answer": "Yes"},
    {"question_type": "check", "question": "First/Last Name is correct?", "answer": True},
]


def _token(rng: random.Random, length: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def fake_donation(rng: random.Random, number: int, when: datetime) -> dict[str, Any]:
    """One plausible paid donation, with every documented key: by card through Stripe (three in
    four) or through PayPal, one in three recurring."""
    first, last = rng.choice(_PEOPLE)
    street, line_2, city, state, zip_code = rng.choice(_PLACES)
    campaign_id, campaign_name = rng.choice(_CAMPAIGNS)
    amount = Decimal(rng.choice(["10", "25", "50", "100", "250", "12.5"]))
    fee = float(round(amount * Decimal("0.029") + Decimal("0.30"), 2))
    via_stripe = rng.random() < 0.75
    recurring = rng.random() < 0.3
    address = {
        "address": street,
        "address_line_2": line_2,
        "city": city,
        "state": state,
        "zip_code": zip_code,
        "country": "US",
        "employer": None,
        "occupation": None,
    }
    return {
        "action": "new",
        "campaign": {"id": campaign_id, "name": campaign_name},
        "donor": {
            "id": 50 + _PEOPLE.index((first, last)),
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}@example.org".lower(),
            **address,
        },
        "amount": money(amount),
        "formatted_amount": formatted(amount),
        "converted_amount": money(amount),
        "formatted_converted_amount": formatted(amount),
        "recurring": recurring,
        "first_recurring_donation": recurring and rng.random() < 0.5,
        "amount_refunded": "0.0",
        "formatted_amount_refunded": "$0",
        "stripe_charge_id": (
            "ch_" + _token(rng, 24, string.ascii_letters + string.digits) if via_stripe else None
        ),
        "paypal_transaction_id": (
            None if via_stripe else _token(rng, 17, string.ascii_uppercase + string.digits)
        ),
        "id": number,
        "status": "paid",
        "donation_type": "stripe" if via_stripe else "paypal",
        "donation_date": stamp(when),
        "anonymous_donation": False,
        "gift_aid": False,
        "designation": rng.choice(_DESIGNATIONS),
        "join_mailing_list": rng.random() < 0.5,
        "comment": None,
        "donating_company": None,
        "currency": "USD",
        "converted_currency": "USD",
        "utm_campaign": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_term": None,
        "utm_content": None,
        "processing_fee": fee,
        "formatted_processing_fee": formatted(fee),
        **address,
        "questions": list(_QUESTIONS) if rng.random() < 0.3 else [],
    }
