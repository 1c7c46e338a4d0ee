"""recipes/donorbox-refunds-to-virtuous.yaml end to end, after donorbox-to-virtuous-gifts.yaml:
a gift synced, then refunded in Donorbox, is reversed in Virtuous exactly once, under each way a
refund might show (the emulator's switches, see conftest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import Result

from connectors.donorbox.emulator.app import DonorboxState
from tests.connectors.donorbox.test_recipe_to_virtuous import gift_key
from tests.connectors.virtuous.support import Virtuous

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
GIFTS = RECIPES / "donorbox-to-virtuous-gifts.yaml"
REFUNDS = RECIPES / "donorbox-refunds-to-virtuous.yaml"
REVERSAL = "/api/Gift/ReversingTransaction"


def run(invoke: Callable[..., Result], recipe: Path, state: Path, code: int = 0) -> dict[str, Any]:
    result = invoke("run", recipe, "--json", "--state", state)
    assert result.exit_code == code, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def reversals_of(virtuous: Virtuous, gift_id: int) -> list[str]:
    """The notes of each reversing transaction Virtuous holds for the gift ``gift_id``."""
    held = virtuous.app.state.emulator.gifts.values()
    return [g.notes for g in held if g.reversed_gift_id == gift_id]


def test_a_synced_gift_refunded_in_donorbox_is_reversed_once(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    donorbox, virtuous = services
    kept, refunded = donorbox.seed(count=2)
    state = tmp_path / "state.db"
    assert run(invoke, GIFTS, state)["outcomes"]["written"] == 2
    virtuous.import_now()
    assert run(invoke, REFUNDS, state)["outcomes"]["filtered"] == 2  # nothing refunded yet

    donorbox.refund(refunded["id"])
    first = run(invoke, REFUNDS, state)
    assert (first["outcomes"]["written"], first["outcomes"]["filtered"]) == (1, 1)
    gift = virtuous.gift(*gift_key(refunded)).json()
    assert reversals_of(virtuous, gift["id"]) == [f"Donorbox refund of donation {refunded['id']}"]
    assert virtuous.gift(*gift_key(kept)).status_code == 200

    before = len(virtuous.requests())
    second = run(invoke, REFUNDS, state)
    assert second["outcomes"]["written"] == 0
    assert second["outcomes"]["unchanged"] == 1
    assert len(virtuous.requests()) == before  # nothing was sent at all
    assert len(reversals_of(virtuous, gift["id"])) == 1
    # The gifts recipe, for its part, now leaves the refunded donation out.
    assert run(invoke, GIFTS, state)["outcomes"]["filtered"] == 1


def test_partial_and_never_synced_refunds_wait_for_a_person(
    services: tuple[DonorboxState, Virtuous], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    """A partial refund is not a reversal of the whole gift; a donation refunded before it was
    ever sent has no gift to reverse. Neither sends anything; both say why."""
    donorbox, virtuous = services
    every = donorbox.seed_every_state()
    state = tmp_path / "state.db"
    run(invoke, GIFTS, state)
    virtuous.import_now()
    later = every["paid_paypal"]
    donorbox.refund(later["id"], Decimal(later["amount"]) / 4)

    report = run(invoke, REFUNDS, state, code=1)
    assert report["outcomes"]["needs_review"] == 4
    assert virtuous.requests(REVERSAL) == []
    reasons = {p["key"]: p["reason"] for p in report["problems"]}
    assert "partial refund of" in reasons[str(later["id"])]
    for name in ("refunded", "partially_refunded", "refunded_paypal"):
        assert "is not in Virtuous" in reasons[str(every[name]["id"])], name
