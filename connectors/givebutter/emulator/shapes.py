"""Givebutter transactions as the published OpenAPI shapes them, in every state a donation goes
through, and refunds applied as each plausible representation would show them.

A list item (``TransactionResource``, list branch) holds the donor, campaign and money; its
``transactions`` array holds one *entry* (the published ``minItems``/``maxItems`` are both 1)
that alone carries ``captured``, ``captured_at``, ``refunded``, ``refunded_at`` and
``line_items``. The top-level ``status`` is one of succeeded, authorized, failed, cancelled: a
refund does not change it.

How Givebutter shows a *partial* refund is not published, so :data:`PartialRefund` names each
plausible way and the emulator is switched between them (``EmulatorSettings.partial_refunds``).
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from typing import Any, Literal, get_args

Record = dict[str, Any]

#: The states a seeded transaction can be in (``GivebutterState.seed_kinds``).
Kind = Literal[
    "succeeded",
    "failed",
    "authorized",
    "cancelled",
    "refunded",
    "partially_refunded",
    "recurring",
    "check",
    "check_not_received",
]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: How a partial refund may show (not published; each is a switch the tests run under):
#: ``flag``: the entry is ``refunded: true`` like a full refund, the amounts unchanged;
#: ``reduced``: the entry stays ``refunded: false`` and its amounts drop to what the donor kept;
#: ``refund_entry``: a second, negative entry (``refunded: true``) follows the original one.
PartialRefund = Literal["flag", "reduced", "refund_entry"]
PARTIAL_REFUNDS: tuple[PartialRefund, ...] = get_args(PartialRefund)

#: Keys only the nested entry has; a change naming them is applied there.
ENTRY_ONLY = frozenset({"captured", "captured_at", "refunded", "refunded_at", "line_items"})
#: Keys both the list item and its entry have (the same transaction, seen twice).
SHARED = frozenset(
    {
        "plan_id",
        "pledge_id",
        "amount",
        "fee",
        "fee_covered",
        "donated",
        "payout",
        "timezone",
        "fair_market_value_amount",
        "tax_deductible_amount",
        "is_recurring",
    }
)
_MONEY = ("amount", "donated", "payout")


def stamp(moment: datetime) -> str:
    """Givebutter's timestamps: ISO 8601 with an explicit UTC offset, whole seconds."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


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
    ("12 Mission St", "Phoenix", "AZ", "85004"),
    ("400 Larimer St", "Denver", "CO", "80202"),
    ("9 Elm Ave", "Austin", "TX", "78701"),
    ("77 Pine Rd", "Portland", "OR", "97205"),
]
_CAMPAIGNS = [(4101, "SPRING25", "Spring Appeal"), (4102, "GALA25", "Annual Gala")]
_FUNDS = [(31, "GENERAL"), (32, "SCHOLAR"), (None, None)]


def fake_transaction(rng: random.Random, number: int, when: datetime) -> Record:
    """One plausible succeeded card, ACH or PayPal donation (some recurring), amounts in major
    units, with every key the published list item requires."""
    first, last = rng.choice(_PEOPLE)
    street, city, state, zipcode = rng.choice(_PLACES)
    campaign_id, campaign_code, campaign_title = rng.choice(_CAMPAIGNS)
    fund_id, fund_code = rng.choice(_FUNDS)
    gift = float(rng.choice([10, 25, 50, 100, 250]))
    fee = round(gift * 0.029 + 0.30, 2)
    covered = fee if rng.random() < 0.5 else 0.0
    amount = round(gift + covered, 2)
    recurring = rng.random() < 0.3
    method = rng.choice(["card", "card", "ach", "paypal"])
    tid = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(16))
    money = {"amount": amount, "fee": fee, "fee_covered": covered, "donated": gift}
    shared = {
        "plan_id": f"pl_{number:05d}" if recurring else None,
        "pledge_id": None,
        **money,
        "payout": round(amount - fee, 2),
        "timezone": "America/Phoenix",
        "fair_market_value_amount": None,
        "tax_deductible_amount": f"{gift:.2f}",
        "is_recurring": recurring,
    }
    entry = {
        "id": tid,
        **shared,
        "captured": True,
        "captured_at": stamp(when),
        "refunded": False,
        "refunded_at": None,
        "line_items": [_donation_line(gift, recurring, when)],
    }
    return {
        "id": tid,
        "number": f"{number:06d}",
        "campaign_id": campaign_id,
        "campaign_code": campaign_code,
        "campaign_title": campaign_title,
        "team_id": None,
        "team_name": None,
        "member_id": None,
        "member_name": None,
        "fund_id": fund_id,
        "fund_code": fund_code,
        "contact_id": 9000 + _PEOPLE.index((first, last)),
        "first_name": first,
        "last_name": last,
        "company": None,
        "company_name": None,
        "email": f"{first}.{last}@example.org".lower(),
        "phone": "+15555550100",
        "address": {
            "address_1": street,
            "address_2": None,
            "city": city,
            "state": state,
            "zipcode": zipcode,
            "country": "US",
        },
        "status": "succeeded",
        "method": method,
        "payment_method": method,
        "is_offline": False,
        "check_number": None,
        "check_deposited_at": None,
        "internal_note": None,
        "currency": "USD",
        "transacted_at": stamp(when),
        "created_at": stamp(when),
        "updated_at": stamp(when),
        "giving_space": None,
        "dedication": None,
        "transactions": [entry],
        "custom_fields": [],
        "utm_parameters": [],
        "external_id": None,
        "communication_opt_in": rng.random() < 0.5,
        "session_id": "".join(rng.choice(string.hexdigits.lower()) for _ in range(32)),
        "attribution_data": None,
        "payout_id": None,
        **shared,
    }


def _donation_line(gift: float, recurring: bool, when: datetime) -> Record:
    return {
        "type": "donation",
        "subtype": "donation",
        "description": "Recurring donation" if recurring else "One-time donation",
        "quantity": 1,
        "price": gift,
        "discount": 0,
        "total": gift,
        "created_at": stamp(when),
        "updated_at": stamp(when),
    }


def entry(record: Record) -> Record:
    """The record's (first) nested entry."""
    first: Record = record["transactions"][0]
    return first


def apply_changes(record: Record, changes: Record) -> Record:
    """Change a list item as Givebutter would show it: entry-only keys on the entry, shared keys
    on both, the rest on the list item."""
    for key, value in changes.items():
        if key in ENTRY_ONLY:
            entry(record)[key] = value
            continue
        record[key] = value
        if key in SHARED:
            entry(record)[key] = value
    return record


def make_kind(record: Record, kind: Kind, when: datetime, partial: PartialRefund) -> Record:
    """Turn a freshly faked succeeded transaction into one of ``kind``."""
    at = stamp(when)
    if kind in ("failed", "authorized", "cancelled"):
        # Never captured: no money moved, nothing paid out.
        apply_changes(record, {"status": kind, "captured": False, "captured_at": None})
        apply_changes(record, {"payout": 0.0})
    elif kind == "refunded":
        refund(record, None, at, partial)
    elif kind == "partially_refunded":
        refund(record, round(record["amount"] / 2, 2), at, partial)
    elif kind == "recurring":
        apply_changes(record, {"is_recurring": True, "plan_id": f"pl_{record['number'][-5:]}"})
    elif kind in ("check", "check_not_received"):
        _offline_check(record, kind == "check", at)
    return record


def _offline_check(record: Record, received: bool, at: str) -> None:
    """A check entered by hand: no processing fee; until it is received, authorized only."""
    gift = record["donated"]
    apply_changes(
        record,
        {
            "method": "check",
            "payment_method": "check",
            "is_offline": True,
            "check_number": "1042",
            "check_deposited_at": at if received else None,
            "fee": 0.0,
            "fee_covered": 0.0,
            "amount": gift,
            "payout": gift,
        },
    )
    if not received:
        apply_changes(record, {"status": "authorized", "captured": False, "captured_at": None})


def refund(record: Record, amount: float | None, at: str, partial: PartialRefund) -> Record:
    """Refund ``amount`` (``None`` or the whole amount: in full) the way ``partial`` says a
    partial refund shows. A full refund is the documented one: the entry's ``refunded``."""
    if amount is None or amount >= record["amount"] or partial == "flag":
        apply_changes(record, {"refunded": True, "refunded_at": at})
    elif partial == "reduced":
        first = entry(record)
        for key in _MONEY:
            first[key] = round(first[key] - amount, 2)
    else:
        negative = {key: 0.0 for key in ("fee", "fee_covered")}
        negative |= {key: -amount for key in _MONEY}
        reversal = entry(record) | negative
        reversal |= {"id": f"{record['id']}-refund", "captured_at": at, "line_items": []}
        reversal |= {"refunded": True, "refunded_at": at}
        record["transactions"].append(reversal)
    return record
