"""recipes/virtuous-gifts-to-csv.yaml against the emulator: a reconciliation export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.connectors.virtuous.support import Virtuous, report

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "virtuous-gifts-to-csv.yaml"

SEED = {
    "projects": [
        {"name": "General", "projectCode": "GENERAL"},
        {"name": "Missions", "projectCode": "MISSIONS"},
    ],
    "contacts": [{"id": 7, "firstName": "Ada", "lastName": "Lovelace"}],
    "gifts": [
        {
            "contactId": 7,
            "amount": "100.00",
            "giftDate": "2025-03-01",
            "giftType": "Credit",
            "transactionSource": "Stripe",
            "transactionId": "ch_1",
            "customFields": {"Stripe Fee": "3.20"},
            "designations": [
                {"code": "GENERAL", "amountDesignated": "60.00"},
                {"code": "MISSIONS", "amountDesignated": "40.00"},
            ],
        },
        {
            "contactId": 7,
            "amount": "5000",
            "currencyCode": "JPY",
            "giftDate": "2025-03-02",
            "giftType": "Cash",
            "designations": [{"code": "GENERAL", "amountDesignated": "5000"}],
        },
    ],
}


@pytest.fixture
def seeded(virtuous: Virtuous) -> Virtuous:
    virtuous.control("POST", "seed", json=SEED)
    return virtuous


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_export_has_amounts_fees_nets_and_designations(
    seeded, write_recipe, invoke, tmp_path
) -> None:
    recipe = write_recipe(RECIPE.read_text())
    first = report(invoke("run", recipe, "--json"))
    assert first["outcomes"]["written"] == 2
    stripe, cash = _rows(tmp_path / "exports" / "virtuous-gifts.csv")
    assert stripe["gift_date"] == "2025-03-01"
    assert stripe["contact_name"] == "Ada Lovelace"
    assert (stripe["amount"], stripe["fee"], stripe["net"]) == ("100.00", "3.20", "96.80")
    assert stripe["designations"] == "GENERAL 60.00; MISSIONS 40.00"
    assert (stripe["transaction_source"], stripe["transaction_id"]) == ("Stripe", "ch_1")
    assert (cash["amount"], cash["fee"], cash["net"], cash["currency"]) == (
        "5000",
        "",
        "5000",
        "JPY",
    )


def test_a_second_export_appends_nothing_already_exported(
    seeded, write_recipe, invoke, tmp_path
) -> None:
    recipe = write_recipe(RECIPE.read_text())
    report(invoke("run", recipe, "--json"))
    again = report(invoke("run", recipe, "--json"))
    assert again["outcomes"]["written"] == again["outcomes"]["updated"] == 0
    assert len(_rows(tmp_path / "exports" / "virtuous-gifts.csv")) == 2
