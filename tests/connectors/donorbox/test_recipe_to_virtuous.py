"""recipes/donorbox-to-virtuous-gifts.yaml end to end: Donorbox emulator -> Virtuous emulator.

The point of the recipe's keys: a card gift that the Stripe sync already submitted is not
created a second time when it arrives through Donorbox.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from click.testing import Result

from connectors.donorbox.emulator.app import DonorboxState
from connectors.donorbox.emulator.shapes import fake_donation
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "donorbox-to-virtuous-gifts.yaml"


def submit_as_stripe_recipe(virtuous: Virtuous, charge: str) -> None:
    """What recipes/stripe-charges-to-virtuous-gifts.yaml sends for the same card charge."""
    response = httpx.post(
        f"{virtuous.url}/api/v2/Gift/Transaction",
        headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
        json={
            "transactionSource": "Stripe",
            "transactionId": charge,
            "amount": "25.00",
            "giftDate": "2025-03-01",
            "giftType": "Credit",
            "contact": {"firstname": "Ada", "lastname": "Lovelace", "email": "a@example.org"},
        },
    )
    response.raise_for_status()


def outcomes(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)["outcomes"]
    return parsed


def test_a_card_gift_already_synced_from_stripe_is_not_created_twice(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    donorbox, virtuous = services
    donations = donorbox.seed(count=6)
    by_card = [d for d in donations if d["stripe_charge_id"]]
    by_paypal = [d for d in donations if not d["stripe_charge_id"]]
    assert by_card
    assert by_paypal  # the seed gives both kinds
    submit_as_stripe_recipe(virtuous, by_card[0]["stripe_charge_id"])
    state = tmp_path / "state.db"

    first = outcomes(invoke("run", RECIPE, "--json", "--state", state))
    assert (first["written"], first["unchanged"]) == (5, 1)
    imported = virtuous.import_now()
    assert imported["giftsCreated"] == 6  # five from Donorbox, one from "Stripe"; no double
    for donation in by_card:
        assert virtuous.gift("Stripe", donation["stripe_charge_id"]).status_code == 200
    for donation in by_paypal:
        created = virtuous.gift("Donorbox", str(donation["id"])).json()
        assert created["amount"] == float(donation["amount"])

    second = outcomes(invoke("run", RECIPE, "--json", "--state", state))
    assert second["written"] == 0
    assert virtuous.state()["counts"]["gifts"] == 6


def test_a_donation_off_its_documented_shape_is_dead_lettered_naming_the_field(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """A broken record is not guessed at (an amount read as a number, a refund read as None),
    and the run goes on with the others."""
    donorbox, virtuous = services
    no_amount, number_amount, no_refund_field, no_donor, fine = donorbox.seed(count=5)
    no_amount["amount"] = None
    number_amount["amount"] = 25.0
    del no_refund_field["amount_refunded"]
    no_donor["donor"] = None
    result = invoke("run", RECIPE, "--json", "--state", tmp_path / "state.db")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (1, 4)
    reasons = {p["key"]: p["reason"] for p in report["problems"]}
    assert str(fine["id"]) not in reasons
    for broken, field in (
        (no_amount, "'amount' Input should be a valid string"),
        (number_amount, "'amount' Input should be a valid string"),
        (no_refund_field, "'amount_refunded' missing"),
        (no_donor, "'donor' Input should be a valid dictionary"),
    ):
        reason = reasons[str(broken["id"])]
        assert "Donorbox sent a record that breaks its published contract" in reason
        assert field in reason
    assert virtuous.import_now()["giftsCreated"] == 1


def test_the_payments_of_a_recurring_donation_make_one_recurring_gift(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """Donorbox names no plan on a donation: its monthly payments (same donor, same campaign)
    are linked to one recurring gift in Virtuous instead of starting a schedule each."""
    donorbox, virtuous = services
    plan = {"recurring": True, "stripe_charge_id": None, "donation_type": "paypal"}
    donor = {**fake_donation(random.Random(1), 1, datetime.now(UTC))["donor"], "id": 77}
    campaign = {"id": 1, "name": "General Giving"}
    payments = donorbox.seed(
        count=3,
        given=[
            {**plan, "donor": donor, "campaign": campaign, "first_recurring_donation": True},
            {**plan, "donor": donor, "campaign": campaign},
            {**plan, "recurring": False, "donor": donor, "campaign": campaign},
        ],
    )
    outcomes(invoke("run", RECIPE, "--json", "--state", tmp_path / "state.db"))
    assert virtuous.import_now()["giftsCreated"] == 3
    assert virtuous.state()["counts"]["recurringGifts"] == 1
    schedules = [
        [p["id"] for p in virtuous.gift("Donorbox", str(d["id"])).json()["recurringGiftPayments"]]
        for d in payments
    ]
    assert schedules[0] == schedules[1] != []
    assert schedules[2] == []


def test_no_refunded_or_partially_refunded_donation_becomes_a_gift(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """However a refund shows (status still paid, refunded, partially refunded), only what
    was paid and kept reaches Virtuous, each gift for its whole amount."""
    donorbox, virtuous = services
    every = donorbox.seed_every_state()
    first = outcomes(invoke("run", RECIPE, "--json", "--state", tmp_path / "state.db"))
    assert (first["written"], first["filtered"]) == (4, 3)
    assert virtuous.import_now()["giftsCreated"] == 4
    for name, donation in every.items():
        source, txn = gift_key(donation)
        found = virtuous.gift(source, txn)
        if "refunded" in name:
            assert found.status_code == 404, name
        else:
            assert found.json()["amount"] == float(donation["amount"]), name


def gift_key(donation: dict[str, Any]) -> tuple[str, str]:
    """The (transactionSource, transactionId) the recipe gives a donation."""
    charge = donation.get("stripe_charge_id")
    return ("Stripe", charge) if charge else ("Donorbox", str(donation["id"]))
