"""recipes/donorbox-to-virtuous-gifts.yaml end to end: Donorbox emulator -> Virtuous emulator.

The point of the recipe's keys: a card gift that the Stripe sync already submitted is not
created a second time when it arrives through Donorbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from connectors.donorbox.emulator.app import DonorboxState
from connectors.donorbox.emulator.app import EmulatorSettings as DonorboxSettings
from connectors.donorbox.emulator.app import create_app as donorbox_app
from core.emulation import EmulatorServer
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, serving

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "donorbox-to-virtuous-gifts.yaml"
EMAIL, DONORBOX_KEY = "ops@example.org", "dbx-e2e-key-31"
PROJECTS = [
    {"name": "General Fund", "code": "GENERAL"},
    {"name": "Scholarships", "code": "SCHOLAR"},
]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DonorboxState, Virtuous]]:
    """Both emulators, the recipe's variables pointing at them."""
    donorbox = donorbox_app(DonorboxSettings(credentials={EMAIL: DONORBOX_KEY}))
    with EmulatorServer(donorbox) as db, serving(monkeypatch) as virtuous:
        monkeypatch.setenv("DONORBOX_EMAIL", EMAIL)
        monkeypatch.setenv("DONORBOX_API_KEY", DONORBOX_KEY)
        monkeypatch.setenv("DONORBOX_BASE_URL", db.url)
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        yield donorbox.state.emulator, virtuous


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


def test_a_donation_missing_what_the_mapping_needs_is_dead_lettered_by_field(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    donorbox, _ = services
    no_amount, no_donor, fine = donorbox.seed(count=3)
    no_amount["amount"] = None
    no_donor["donor"] = None
    no_donor["stripe_charge_id"] = None  # keyed by the donation, so only the contact is missing
    result = invoke("run", RECIPE, "--json", "--state", tmp_path / "state.db")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (1, 2)
    fields = {p["key"]: p["field"] for p in report["problems"]}
    assert fields == {str(no_amount["id"]): "amount", str(no_donor["id"]): "contact"}
    assert str(fine["id"]) not in fields


def test_the_payments_of_a_recurring_donation_make_one_recurring_gift(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """Donorbox names no plan on a donation: its monthly payments (same donor, same campaign)
    are linked to one recurring gift in Virtuous instead of starting a schedule each."""
    donorbox, virtuous = services
    plan = {"recurring": True, "stripe_charge_id": None, "donation_type": "paypal"}
    donor = {"id": 77, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}
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
