"""The shipped Stripe recipes, run as a user runs them: Stripe emulator -> Virtuous emulator.

Charges become gifts with the right amount in every currency exponent (USD, JPY, KWD), the
designation from the checkout's metadata and the Stripe customer as the contact's reference;
refunds then reverse the gifts (a partial refund waits for a person)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from connectors.stripe import service
from tests.connectors.stripe.conftest import JAN_2025, KEY, Emulator
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, serving

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
CHARGES = RECIPES / "stripe-charges-to-virtuous-gifts.yaml"
REFUNDS = RECIPES / "stripe-refunds-to-virtuous.yaml"
PROJECTS = [
    {"name": n, "code": c}
    for n, c in (("General Fund", "GENERAL"), ("Scholarships", "SCHOLAR"), ("Missions", "MISSIONS"))
]


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch) -> Iterator[Virtuous]:
    with serving(monkeypatch) as emulator:
        emulator.control("POST", "seed", json={"projects": PROJECTS})
        yield emulator


def seed_donations(emulator: Emulator) -> dict[str, dict[str, Any]]:
    specs = {
        "usd": {
            "amount": 2500,
            "currency": "usd",
            "created": JAN_2025,
            "metadata": {"designation": "scholarships", "campaign": "SPRING25"},
            "description": "Spring appeal",
            "customer": {"name": "Ada Lovelace", "email": "Ada@Example.org"},
            "billing_details": {
                "name": "Ada Lovelace",
                "phone": "+1 602 555 0100",
                "address": {
                    "line1": "1 Main St",
                    "city": "Phoenix",
                    "state": "AZ",
                    "postal_code": "85004",
                    "country": "US",
                },
            },
        },
        "jpy": {
            "amount": 1500,
            "currency": "jpy",
            "created": JAN_2025 + 3 * 86_400,
            "billing_details": {"name": "Katherine Johnson", "email": "kj@example.org"},
        },
        "kwd": {
            "amount": 12345,
            "currency": "kwd",
            "created": JAN_2025 + 4 * 86_400,
            "metadata": {"designation": "missions"},
            "customer": {"name": "Grace Hopper", "email": "grace@example.org"},
        },
        "failed": {
            "amount": 999,
            "status": "failed",
            "created": JAN_2025 + 5 * 86_400,
            "billing_details": {"name": "Alan Turing"},
        },
    }
    return {name: emulator.store.seed_charge(spec) for name, spec in specs.items()}


def run(invoke: Any, recipe: Path, state: Path, code: int = 0) -> dict[str, Any]:
    result = invoke("run", recipe, "--json", "--state", state)
    assert result.exit_code == code, result.output
    assert KEY not in result.output
    assert VIRTUOUS_KEY not in result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_charges_become_gifts_in_every_currency_and_refunds_reverse_them(
    emulator_env: Emulator, virtuous: Virtuous, invoke: Any, tmp_path: Path
) -> None:
    charges = seed_donations(emulator_env)
    state = tmp_path / "state.db"

    report = run(invoke, CHARGES, state)
    assert report["outcomes"]["written"] == 3  # the failed charge is never read
    assert report["money"] == {"USD": "25.00", "JPY": "1500", "KWD": "12.345"}
    assert virtuous.import_now()["giftsCreated"] == 3

    usd = virtuous.gift("Stripe", charges["usd"]["id"]).json()
    assert (usd["amount"], usd["currencyCode"]) == (25.0, "USD")
    assert usd["giftDate"] == "2025-01-01T00:00:00"
    assert usd["notes"] == "Spring appeal"
    assert usd["segment"] == "SPRING25"  # metadata.campaign
    assert [d["projectCode"] for d in usd["giftDesignations"]] == ["SCHOLAR"]
    jpy = virtuous.gift("Stripe", charges["jpy"]["id"]).json()
    assert (jpy["amount"], jpy["currencyCode"]) == (1500, "JPY")
    assert [d["projectCode"] for d in jpy["giftDesignations"]] == ["GENERAL"]
    kwd = virtuous.gift("Stripe", charges["kwd"]["id"]).json()
    assert (kwd["amount"], kwd["currencyCode"]) == (12.345, "KWD")
    assert [d["projectCode"] for d in kwd["giftDesignations"]] == ["MISSIONS"]
    ada = [c for c in virtuous.state()["contacts"] if c["name"] == "Ada Lovelace"]
    assert len(ada) == 1

    again = run(invoke, CHARGES, state)
    assert again["outcomes"]["written"] == 0
    assert again["outcomes"]["unchanged"] >= 1

    store = emulator_env.store
    full = store.create_refund(
        {
            "charge": charges["usd"]["id"],
            "created": JAN_2025 + 10 * 86_400,
            "reason": "requested_by_customer",
        }
    )
    store.create_refund(
        {"charge": charges["jpy"]["id"], "amount": 500, "created": JAN_2025 + 11 * 86_400}
    )
    refunds = run(invoke, REFUNDS, state, code=1)  # the partial refund needs a person
    assert refunds["outcomes"]["written"] == 1
    assert refunds["outcomes"]["needs_review"] == 1
    (problem,) = refunds["problems"]
    assert "partial refund of 500" in problem["reason"]
    reversals = [g for g in virtuous.state()["gifts"] if g["giftType"] == "Reversing Transaction"]
    assert [(r["amount"], r["currencyCode"]) for r in reversals] == [(-25.0, "USD")]
    assert reversals[0]["notes"] == f"Stripe refund {full['id']} (requested_by_customer)"


def test_a_charge_with_nobody_to_credit_is_dead_lettered_naming_the_contact(
    emulator_env: Emulator, virtuous: Virtuous, invoke: Any, tmp_path: Path
) -> None:
    """A charge made through the API with no customer and no billing details lacks every field
    the contact mapping reads: it is dead-lettered with the field named, the others go on."""
    store = emulator_env.store
    kept = store.seed_charge(
        {"amount": 1000, "created": JAN_2025, "billing_details": {"name": "Ada Lovelace"}}
    )
    bare = store.seed_charge({"amount": 2000, "created": JAN_2025 + 60})
    report = run(invoke, CHARGES, tmp_path / "state.db", code=1)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (1, 1)
    (problem,) = report["problems"]
    assert (problem["key"], problem["field"]) == (bare["id"], "contact")
    assert "needs an id, referenceId, email, name" in problem["reason"]
    assert virtuous.import_now()["giftsCreated"] == 1
    assert virtuous.gift("Stripe", kept["id"]).status_code == 200


def test_an_authorization_becomes_a_gift_only_once_captured(
    emulator_env: Emulator, virtuous: Virtuous, invoke: Any, tmp_path: Path
) -> None:
    """Stripe calls an authorized, not yet captured charge "succeeded": no money has moved, so
    it is no gift yet. It holds the cursor, and the run after its capture (days later, with the
    same ``created``) sends it."""
    store = emulator_env.store
    before = store.seed_charge({"amount": 1000, "created": JAN_2025, "customer": {"name": "A B"}})
    held = store.seed_charge(
        {
            "amount": 5000,
            "created": JAN_2025 + 86_400,
            "captured": False,
            "customer": {"name": "C D"},
        }
    )
    after = store.seed_charge(
        {"amount": 2000, "created": JAN_2025 + 5 * 86_400, "customer": {"name": "E F"}}
    )
    state = tmp_path / "state.db"
    first = run(invoke, CHARGES, state)
    assert (first["outcomes"]["written"], first["money"]) == (2, {"USD": "30.00"})
    assert virtuous.import_now()["giftsCreated"] == 2
    assert virtuous.gift("Stripe", held["id"]).status_code == 404

    client = stripe.StripeClient(KEY, base_addresses={"api": emulator_env.url})
    client.v1.charges.capture(held["id"])
    second = run(invoke, CHARGES, state)
    assert second["outcomes"]["written"] == 1
    assert virtuous.import_now()["giftsCreated"] == 1
    gift = virtuous.gift("Stripe", held["id"]).json()
    assert gift["amount"] == 50.0
    assert {"Stripe Fee": "1.75"}.items() <= {
        f["name"]: f["value"] for f in gift["customFields"]
    }.items()
    assert {before["id"], after["id"]} <= {g["transactionId"] for g in virtuous.state()["gifts"]}


def test_a_storm_of_429s_is_waited_out_and_every_gift_lands_once(
    emulator_env: Emulator,
    virtuous: Virtuous,
    invoke: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stripe answers a 429 in its own envelope and the SDK raises RateLimitError for it; a storm
    longer than any count of tries is waited out (only the throttle timeout bounds it), and the
    report says how often the run waited."""
    fast = dataclasses.replace(service._RETRY, base_delay=0.001, max_delay=0.002)
    monkeypatch.setattr(service, "_RETRY", fast)  # the same bounds, without the real waiting
    charges = seed_donations(emulator_env)
    storm = 25
    emulator_env.app.state.settings.faults.update(rate_limit_storm=storm, storm_retry_after=0)

    report = run(invoke, CHARGES, tmp_path / "state.db")

    assert report["outcomes"]["written"] == 3
    assert report["rate_limit_waits"] >= storm
    assert emulator_env.app.state.settings.faults.rate_limit_storm == 0
    throttled = [r for r in emulator_env.requests if r["status"] == 429]
    assert len(throttled) == storm
    assert virtuous.import_now()["giftsCreated"] == 3
    sent = [g["transactionId"] for g in virtuous.state()["gifts"]]
    expected = [charges[name]["id"] for name in ("usd", "jpy", "kwd")]
    assert sorted(sent) == sorted(expected)


def test_the_waits_are_shown_in_the_run_summary(
    emulator_env: Emulator, virtuous: Virtuous, invoke: Any, tmp_path: Path
) -> None:
    """Whether Stripe sends Retry-After with a 429 is not documented: here it does (the storm
    above sends none worth waiting for), and the run waits as long as it says."""
    seed_donations(emulator_env)
    emulator_env.app.state.settings.faults.update(rate_limit_storm=2, storm_retry_after=1)
    started = time.monotonic()
    result = invoke("run", CHARGES, "--state", tmp_path / "state.db")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 2  # the server's word, twice
    assert "rate-limit waits" in result.output
    assert virtuous.import_now()["giftsCreated"] == 3
