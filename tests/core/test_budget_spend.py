"""The budget is spent only on what must be sent: requests counted by the Virtuous emulator.

Virtuous allows an organization 5,000 requests an hour, shared by all its integrations. A batch
holds ``batch_size`` records that will really be sent (not ``batch_size`` records examined), a
gift Virtuous refused is not sent again until its payload changes or ``dlq retry`` asks, and a
refusal costs at most one extra request for its batch. Each run says what it sent against the
fewest requests that could have carried it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.virtuous.support import (
    Virtuous,
    donations_csv,
    gifts_recipe,
    report,
    serving,
)

TRANSACTIONS = ("/api/v2/Gift/Transactions", "/api/v2/Gift/Transaction")


def _posts(emulator: Virtuous) -> int:
    """Gift transaction requests the emulator has seen so far."""
    return len([r for r in emulator.requests() if r["path"] in TRANSACTIONS])


def _without(path: Path, keys: set[str]) -> None:
    """Rewrite the CSV at ``path`` without the rows whose id is in ``keys``."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["id"] not in keys)


def _run(invoke: Any, recipe: Path, emulator: Virtuous, *args: str) -> tuple[dict[str, Any], int]:
    """The run's JSON report, and the gift requests the emulator saw during it (checked against
    what the report says it sent: every request the emulator saw)."""
    before, seen = _posts(emulator), len(emulator.requests())
    result = report(invoke(*args, recipe, "--json"))
    assert result["requests"]["sent"] == len(emulator.requests()) - seen
    return result, _posts(emulator) - before


# The project the designated gifts name: the sink checks designations against Virtuous's projects.
GENERAL_FUND = {"name": "General Fund", "projectCode": "GENERAL"}


def _designated(batch: int, short: set[str]) -> str:
    """The gifts recipe designating each gift's whole amount, but 1 for the gifts in ``short``:
    valid here, refused by a Virtuous that requires designations to sum to the amount."""
    return gifts_recipe(batch=batch).replace(
        "  giftType: \"'Credit'\"\n",
        "  giftType: \"'Credit'\"\n  designations:\n    - code: record.fund\n"
        f'      amountDesignated: "1 if record.id in {sorted(short)} else'
        ' record.cents | to_int | minor_to_major(record.currency)"\n',
    )


@pytest.mark.parametrize("transaction_validation", ["lenient", "strict"])
def test_a_rerun_after_scattered_additions_sends_the_fewest_requests(
    monkeypatch, write_recipe, invoke, tmp_path, transaction_validation
) -> None:
    added = {f"g-{n}" for n in range(1, 1001) if n % 21 == 0}  # 47 gifts, one per 21 rows
    csv_path = donations_csv(tmp_path / "donations.csv", 1000)
    _without(csv_path, added)
    recipe = write_recipe(gifts_recipe(batch=20))
    with serving(monkeypatch, transaction_validation=transaction_validation) as emulator:
        first, _ = _run(invoke, recipe, emulator, "run")
        donations_csv(csv_path, 1000)
        second, sent = _run(invoke, recipe, emulator, "run")
        pending = [p["transactionId"] for p in emulator.state()["pending"]]
    assert first["outcomes"]["written"] == 953
    assert second["outcomes"] == {**second["outcomes"], "written": 47, "unchanged": 953}
    assert sent == math.ceil(47 / 20) == 3  # was one request per 20 rows read: 47
    assert second["requests"] == {"sent": 3, "minimum": 3}
    assert sorted(pending) == sorted(f"g-{n}" for n in range(1, 1001))  # each gift once


def test_gifts_virtuous_refused_wait_for_a_change_or_dlq_retry(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    # One refused gift in each batch of 25 to send: a refusal costs one more request.
    bad = {f"g-{n}" for n in range(12, 201, 25)}
    donations_csv(tmp_path / "donations.csv", 200)
    recipe = write_recipe(_designated(25, bad))
    # Refused at POST: where Virtuous takes them and its import sets them aside, nothing waits.
    mode = {"require_designation_sum": True, "transaction_validation": "strict"}
    with serving(monkeypatch, **mode) as emulator:
        emulator.control("POST", "seed", json={"projects": [GENERAL_FUND]})
        first, first_sent = _run(invoke, recipe, emulator, "run")
        again, again_sent = _run(invoke, recipe, emulator, "run")
        fixed = {"g-12", "g-37"}  # two corrected at the source
        write_recipe(_designated(25, bad - fixed))
        changed, changed_sent = _run(invoke, recipe, emulator, "run")
        retried, retried_sent = _run(invoke, recipe, emulator, "dlq", "retry")
        letters = json.loads(invoke("dlq", "list", recipe, "--json").stdout)
    assert first["outcomes"] == {**first["outcomes"], "written": 192, "invalid": 8}
    assert first_sent == 16  # 8 batches, each refused once then sent without its bad gift
    assert first["requests"]["minimum"] == 8
    # Unchanged and refused: not sent on a plain run, and the run says so.
    assert again_sent == 0
    assert again["requests"] == {"sent": 0, "minimum": 0}
    assert again["outcomes"] == {**again["outcomes"], "unchanged": 192, "invalid": 0}
    assert again["dead_letters_waiting"] == 8
    # A changed payload is sent (both in one request); the others still wait.
    assert changed_sent == 1
    assert changed["outcomes"] == {**changed["outcomes"], "written": 2, "unchanged": 192}
    assert changed["dead_letters_waiting"] == 6
    # `dlq retry` sends what waits, whatever its payload: refused again, in one request.
    assert retried_sent == 1
    assert retried["outcomes"]["invalid"] == 6
    assert sorted(letter["key"] for letter in letters) == sorted(bad - fixed)


def test_the_summary_shows_requests_against_the_minimum(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 30)
    recipe = write_recipe(gifts_recipe(batch=10))
    with serving(monkeypatch):
        shown = invoke("run", recipe)
    assert shown.exit_code == 0, shown.output
    assert "requests" in shown.stdout
    assert "3 (minimum 3)" in shown.stdout
