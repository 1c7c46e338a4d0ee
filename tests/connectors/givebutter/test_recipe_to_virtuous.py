"""recipes/givebutter-to-virtuous-gifts.yaml end to end: Givebutter -> Virtuous emulators, with
transactions in Givebutter's published shape, under every way a partial refund may show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from connectors.givebutter.emulator.app import GivebutterState
from connectors.givebutter.emulator.shapes import KINDS
from tests.connectors.givebutter.conftest import RECIPES, run_recipe
from tests.connectors.virtuous.support import Virtuous

RECIPE = RECIPES / "givebutter-to-virtuous-gifts.yaml"


def run(invoke: Callable[..., Result], state: Path, code: int = 0) -> dict[str, Any]:
    return run_recipe(invoke, RECIPE, state, code)


def test_transactions_become_gifts_once(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, virtuous = services
    transactions = givebutter.seed(count=5)
    givebutter.refund(transactions[4]["id"])  # refunded before it was ever sent: no gift
    runs = [run(invoke, tmp_path / "state.db")["outcomes"] for _ in range(2)]
    assert virtuous.import_now()["giftsCreated"] == 4
    sample = transactions[0]
    created = virtuous.gift("Givebutter", sample["id"]).json()
    assert (runs[0]["written"], runs[0]["filtered"]) == (4, 1)
    assert runs[1]["written"] == 0
    assert created["amount"] == sample["amount"]
    assert created["transactionSource"] == "Givebutter"


def test_only_captured_unrefunded_donations_become_gifts(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """One transaction in every state Givebutter has: only money that was taken and kept is a
    gift. A refund, whole or partial, an authorization never captured, a failed or cancelled
    payment and a check not yet received are left out."""
    givebutter, virtuous = services
    made = dict(zip(KINDS, givebutter.seed_kinds(*KINDS), strict=True))
    report = run(invoke, tmp_path / "state.db")
    gifts = {"succeeded", "recurring", "check"}
    assert report["outcomes"]["written"] == len(gifts)
    assert report["outcomes"]["filtered"] == len(KINDS) - len(gifts)
    assert virtuous.import_now()["giftsCreated"] == len(gifts)
    sent = virtuous.gift
    in_virtuous = {kind for kind, tx in made.items() if sent("Givebutter", tx["id"]).is_success}
    assert in_virtuous == gifts
    check = virtuous.gift("Givebutter", made["check"]["id"]).json()
    assert (check["giftType"], check["amount"]) == ("Check", made["check"]["amount"])


def test_a_gift_refunded_after_it_was_sent_is_not_sent_again(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, virtuous = services
    whole, part, kept = givebutter.seed(count=3, given=[{"is_recurring": False}] * 3)
    run(invoke, tmp_path / "state.db")
    givebutter.refund(whole["id"])
    givebutter.refund(part["id"], amount=round(part["amount"] / 3, 2))
    again = run(invoke, tmp_path / "state.db")["outcomes"]
    assert (again["filtered"], again["written"], again["updated"]) == (2, 0, 0)
    assert virtuous.import_now()["giftsCreated"] == 3  # the three sent before the refunds
    assert virtuous.gift("Givebutter", kept["id"]).json()["amount"] == kept["amount"]


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
    problems = {p["key"]: p for p in report["problems"]}
    # Givebutter's contract requires an amount: the source refuses the record, naming it...
    assert "'amount' missing" in problems[no_amount["id"]]["reason"]
    # ...and the mapping names what it could not build from the others.
    assert problems[no_date["id"]]["field"] == "giftDate"
    assert problems[nobody["id"]]["field"] == "contact"
    assert fine["id"] not in problems


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
