"""recipes/givebutter-to-virtuous-gifts.yaml end to end: Givebutter -> Virtuous emulators."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from connectors.givebutter.emulator.app import EmulatorSettings as GivebutterSettings
from connectors.givebutter.emulator.app import GivebutterState
from connectors.givebutter.emulator.app import create_app as givebutter_app
from core.emulation import EmulatorServer
from tests.connectors.virtuous.support import Virtuous, serving

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "givebutter-to-virtuous-gifts.yaml"
GIVEBUTTER_KEY = "gb-e2e-key-77"
PROJECTS = [{"name": "General", "code": "GENERAL"}, {"name": "Scholarships", "code": "SCHOLAR"}]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GivebutterState, Virtuous]]:
    """Both emulators, the recipe's variables pointing at them."""
    givebutter = givebutter_app(GivebutterSettings(api_keys=[GIVEBUTTER_KEY]))
    with EmulatorServer(givebutter) as gb, serving(monkeypatch) as virtuous:
        monkeypatch.setenv("GIVEBUTTER_API_KEY", GIVEBUTTER_KEY)
        monkeypatch.setenv("GIVEBUTTER_BASE_URL", gb.url)
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        yield givebutter.state.emulator, virtuous


def run(invoke: Callable[..., Result], state: Path, code: int = 0) -> dict[str, Any]:
    result = invoke("run", RECIPE, "--json", "--state", state)
    assert result.exit_code == code, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_transactions_become_gifts_once(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, virtuous = services
    transactions = givebutter.seed(count=5)
    transactions[4].update(refunded=True)  # refunded before it was ever sent: no gift
    runs = [run(invoke, tmp_path / "state.db")["outcomes"] for _ in range(2)]
    assert virtuous.import_now()["giftsCreated"] == 4
    sample = transactions[0]
    created = virtuous.gift("Givebutter", sample["id"]).json()
    assert (runs[0]["written"], runs[0]["filtered"]) == (4, 1)
    assert runs[1]["written"] == 0
    assert created["amount"] == sample["amount"]
    assert created["transactionSource"] == "Givebutter"


def test_a_transaction_missing_what_the_mapping_needs_is_dead_lettered_by_field(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, _ = services
    no_amount, no_date, nobody, fine = givebutter.seed(count=4)
    del no_amount["amount"]
    no_date["transacted_at"] = None
    for name in ("contact_id", "email", "first_name", "last_name"):
        del nobody[name]
    report = run(invoke, tmp_path / "state.db", code=1)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (1, 3)
    fields = {p["key"]: p["field"] for p in report["problems"]}
    assert fields == {no_amount["id"]: "amount", no_date["id"]: "giftDate", nobody["id"]: "contact"}
    assert fine["id"] not in fields


def test_the_payments_of_a_monthly_plan_make_one_recurring_gift(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """Each payment of a plan is a gift of one recurring gift in Virtuous, not a new schedule
    per payment (Virtuous links them by recurringGiftTransactionId: the plan)."""
    givebutter, virtuous = services
    monthly = {"is_recurring": True, "plan_id": "pl_00077", "contact_id": 9001}
    march, april, once = givebutter.seed(count=3, given=[monthly, monthly, {"is_recurring": False}])
    run(invoke, tmp_path / "state.db")
    assert virtuous.import_now()["giftsCreated"] == 3
    assert virtuous.state()["counts"]["recurringGifts"] == 1
    schedules = [
        [p["id"] for p in virtuous.gift("Givebutter", t["id"]).json()["recurringGiftPayments"]]
        for t in (march, april, once)
    ]
    assert schedules[0] == schedules[1] != []
    assert schedules[2] == []
