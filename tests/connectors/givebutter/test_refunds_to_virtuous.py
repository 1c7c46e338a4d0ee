"""recipes/givebutter-refunds-to-virtuous.yaml end to end, after givebutter-to-virtuous-gifts.yaml:
a gift synced, then refunded in Givebutter, is reversed in Virtuous exactly once, under each way
a partial refund might show (the emulator's switch, see conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from connectors.givebutter.emulator.app import GivebutterState
from tests.connectors.givebutter.conftest import RECIPES, run_recipe
from tests.connectors.virtuous.support import Virtuous

GIFTS = RECIPES / "givebutter-to-virtuous-gifts.yaml"
REFUNDS = RECIPES / "givebutter-refunds-to-virtuous.yaml"
REVERSAL = "/api/Gift/ReversingTransaction"


def reversals_of(virtuous: Virtuous, gift_id: int) -> list[str]:
    """The notes of each reversing transaction Virtuous holds for the gift ``gift_id``."""
    held = virtuous.app.state.emulator.gifts.values()
    return [g.notes for g in held if g.reversed_gift_id == gift_id]


def test_a_synced_gift_refunded_in_givebutter_is_reversed_once(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, virtuous = services
    kept, refunded = givebutter.seed(count=2)
    state = tmp_path / "state.db"
    assert run_recipe(invoke, GIFTS, state)["outcomes"]["written"] == 2
    virtuous.import_now()
    assert run_recipe(invoke, REFUNDS, state)["outcomes"]["filtered"] == 2  # nothing refunded

    givebutter.refund(refunded["id"])
    first = run_recipe(invoke, REFUNDS, state)
    assert first["outcomes"]["written"] == 1
    gift = virtuous.gift("Givebutter", refunded["id"]).json()
    note = f"Givebutter refund of transaction {refunded['id']}"
    assert reversals_of(virtuous, gift["id"]) == [note]
    assert reversals_of(virtuous, virtuous.gift("Givebutter", kept["id"]).json()["id"]) == []

    before = len(virtuous.requests())
    second = run_recipe(invoke, REFUNDS, state)
    assert second["outcomes"]["written"] == 0
    assert len(virtuous.requests()) == before  # nothing was sent at all
    assert len(reversals_of(virtuous, gift["id"])) == 1
    # Nor does the gifts recipe send the refunded donation again.
    assert run_recipe(invoke, GIFTS, state)["outcomes"]["written"] == 0


def test_a_partial_refund_is_held_for_review_where_givebutter_says_how_much(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """Virtuous reverses whole gifts: a partial refund is for a person. Where Givebutter flags a
    partial refund exactly as a full one (the ``flag`` form), nothing tells them apart and the
    gift is reversed in full, as the recipe's comments warn."""
    givebutter, virtuous = services
    (gift,) = givebutter.seed(given=[{"amount": 100.0, "donated": 100.0, "payout": 97.0}])
    state = tmp_path / "state.db"
    run_recipe(invoke, GIFTS, state)
    virtuous.import_now()
    givebutter.refund(gift["id"], amount=40)
    flagged = givebutter.settings.partial_refunds == "flag"
    report = run_recipe(invoke, REFUNDS, state, code=0 if flagged else 1)
    held = virtuous.gift("Givebutter", gift["id"]).json()
    if flagged:
        assert report["outcomes"]["written"] == 1
        assert len(reversals_of(virtuous, held["id"])) == 1
    else:
        (problem,) = report["problems"]
        assert problem["outcome"] == "needs_review"
        assert "partial refund of 40" in problem["reason"]
        assert reversals_of(virtuous, held["id"]) == []
        assert virtuous.requests(REVERSAL) == []


def test_a_refund_of_a_donation_never_sent_sends_nothing(
    services: tuple[GivebutterState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, virtuous = services
    (early,) = givebutter.seed(count=1)
    givebutter.refund(early["id"])
    state = tmp_path / "state.db"
    assert run_recipe(invoke, GIFTS, state)["outcomes"]["filtered"] == 1
    report = run_recipe(invoke, REFUNDS, state, code=1)
    (problem,) = report["problems"]
    assert problem["outcome"] == "needs_review"
    assert "not in Virtuous" in problem["reason"]
    assert virtuous.requests(REVERSAL) == []
