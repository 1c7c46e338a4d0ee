"""Dead letters a person handles in Virtuous by hand: a partial refund, a contact no one matches.

The run and ``dlq list`` name ``connector dlq resolve`` for them (a ``dlq retry`` would only ask
Virtuous the same question again); once resolved, the next run leaves each alone, and one that
changes afterwards is never sent as a second reversal. A refund in doubt after a killed run is
in test_in_flight.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import (
    REFUNDS_RECIPE,
    Virtuous,
    donations_csv,
    gifts_recipe,
    report,
)

UPDATES = """\
version: 1
name: updates
source: {use: file.jsonl, with: {path: people.jsonl, key: id}}
map:
  email: record.email
  firstName: record.first
  lastName: "'Person'"
sink:
  use: virtuous.contacts
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def _partial_refund(virtuous: Virtuous, write_recipe, invoke, tmp_path: Path) -> Path:
    """Gift g-1 (10.01) in Virtuous, and a refund of 5.00 of it to reverse."""
    donations_csv(tmp_path / "donations.csv", 2)
    report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
    virtuous.import_now()
    _refund(tmp_path, 500)
    return Path(write_recipe(REFUNDS_RECIPE, "refunds.yaml"))


def _refund(tmp_path: Path, cents: int) -> None:
    row = {"id": "re_1", "gift": "g-1", "date": "2025-03-05", "cents": cents}
    write_jsonl(tmp_path / "refunds.jsonl", [row])


def _letters(invoke, recipe: Path) -> list[dict[str, str]]:
    listed = invoke("dlq", "list", recipe, "--json")
    assert listed.exit_code == 0, listed.output
    rows: list[dict[str, str]] = json.loads(listed.stdout)
    return rows


def _counted(run: dict[str, dict[str, int]]) -> dict[str, int]:
    return {outcome: n for outcome, n in run["outcomes"].items() if n}


def _reversals(virtuous: Virtuous) -> list[dict[str, object]]:
    return [g for g in virtuous.state()["gifts"] if float(str(g["amount"])) < 0]


def test_a_partial_refund_adjusted_by_hand_is_resolved_and_not_sent_again(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    refunds = _partial_refund(virtuous, write_recipe, invoke, tmp_path)
    first = invoke("run", refunds)
    assert first.exit_code == 1
    assert "1 record(s) need a person" in first.stderr
    assert f"then `connector dlq resolve {refunds} KEY...` records it" in first.stderr
    assert "dlq retry" not in first.stderr  # asked again, Virtuous would answer the same
    [letter] = _letters(invoke, refunds)
    assert letter["next"] == f"connector dlq resolve {refunds} re_1"

    resolved = invoke("dlq", "resolve", refunds, "re_1")
    assert resolved.exit_code == 0, resolved.output
    assert "1 record(s) of refunds resolved: the next run leaves them alone" in resolved.stdout
    assert _letters(invoke, refunds) == []
    asked = len(virtuous.requests())
    again = report(invoke("run", refunds, "--json"))
    assert again["ok"]
    assert _counted(again) == {"unchanged": 1}
    assert len(virtuous.requests()) == asked  # not even a look-up of the gift
    assert _reversals(virtuous) == []


def test_a_resolved_refund_that_changes_is_never_reversed_by_the_run(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    """Once a person has handled it, a change (here: the refund grown to the whole gift) is a
    change to apply by hand, as for any record written before: the run sends nothing."""
    refunds = _partial_refund(virtuous, write_recipe, invoke, tmp_path)
    report(invoke("run", refunds, "--json"))
    assert invoke("dlq", "resolve", refunds, "re_1").exit_code == 0
    _refund(tmp_path, 1001)
    asked = len(virtuous.requests())
    changed = report(invoke("run", refunds, "--json"))
    assert changed["to_apply"] == 1
    assert len(virtuous.requests()) == asked
    assert _reversals(virtuous) == []


def test_a_contact_no_one_matches_is_resolved_once_handled(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    write_jsonl(tmp_path / "people.jsonl", [{"id": "u-1", "email": "new@example.org"}])
    recipe = Path(write_recipe(UPDATES))
    first = invoke("run", recipe)
    assert first.exit_code == 1
    assert "no Virtuous contact matches new@example.org" in first.stderr
    assert f"`connector dlq resolve {recipe} KEY...`" in first.stderr
    [letter] = _letters(invoke, recipe)
    assert letter["next"] == f"connector dlq resolve {recipe} u-1"
    assert invoke("dlq", "resolve", recipe, "u-1").exit_code == 0
    asked = len(virtuous.requests())
    again = report(invoke("run", recipe, "--json"))
    assert _counted(again) == {"unchanged": 1}
    assert len(virtuous.requests()) == asked
    assert _letters(invoke, recipe) == []


def test_a_refund_of_a_gift_not_imported_yet_is_still_retried(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    """The one a person need not handle: its reason says that `dlq retry` reverses it once
    Virtuous has imported the gift (and how to resolve it if the gift never comes)."""
    donations_csv(tmp_path / "donations.csv", 1)
    report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
    _refund(tmp_path, 1001)
    refunds = Path(write_recipe(REFUNDS_RECIPE, "refunds.yaml"))
    early = report(invoke("run", refunds, "--json"))
    (problem,) = early["problems"]
    assert "`connector dlq retry` reverses it" in problem["reason"]
    assert "`connector dlq resolve`" in problem["reason"]
    virtuous.import_now()
    assert _counted(report(invoke("dlq", "retry", refunds, "--json"))) == {"written": 1}
    assert len(_reversals(virtuous)) == 1
