"""Gifts in flight: what a lost answer or a killed process leaves, and how the next run settles it.

Every record is marked in flight before its request leaves and cleared with the answer. These
tests end runs where it hurts (SIGKILL after the mark, after Virtuous processed the request,
between the answer and the commit) and lose answers on purpose, then check the end state is
exact: every gift once in Virtuous, none twice, and reports that count what Virtuous holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.state import open_state
from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import (
    KEY,
    REFUNDS_RECIPE,
    Virtuous,
    donations_csv,
    gifts_recipe,
    report,
    serving,
)

ROOT = Path(__file__).resolve().parents[3]

# Runs the CLI after arranging for the process to SIGKILL itself at the CRASH_NTH call of
# CRASH_AT, before or after the call (CRASH_WHEN), as a power cut would.
_KILLED_AT = """
import os, signal, sys
from core.runner import Runner
from core.state.sqlite import SqliteStateStore as Store
from connectors.virtuous.gift_transactions import GiftTransactions
from connectors.virtuous.gift_reversals import GiftReversals

if os.environ.get("CONNECTOR_STATE_URL", "").startswith("postgresql://"):
    from core.state.postgres import PostgresStateStore as Store
owners = {"store": Store, "runner": Runner, "gifts": GiftTransactions,
          "reversals": GiftReversals}
owner_name, method = os.environ["CRASH_AT"].split(".")
owner, nth, when = owners[owner_name], int(os.environ["CRASH_NTH"]), os.environ["CRASH_WHEN"]
original, calls = getattr(owner, method), [0]

def dying(*args, **kwargs):
    calls[0] += 1
    mine = calls[0]  # batches may be sent from two threads at once
    if mine == nth and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if mine == nth and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, method, dying)
from core.cli import main
main()
"""


def _killed_run(recipe: Path, emulator: Virtuous, at: str, nth: int, when: str) -> int:
    env = {
        **os.environ,
        "VIRTUOUS_BASE_URL": emulator.url,
        "VIRTUOUS_API_KEY": KEY,
        "PYTHONPATH": str(ROOT),
        "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1",
        "CRASH_AT": at,
        "CRASH_NTH": str(nth),
        "CRASH_WHEN": when,
    }
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_AT, "run", str(recipe), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode


def _accepted(emulator: Virtuous) -> Counter[str]:
    """How many times Virtuous accepted each transactionId (a refused repeat is not counted)."""
    accepted: Counter[str] = Counter()
    for entry in emulator.requests():
        if entry["status"] != 200 or "Gift/Transaction" not in entry["path"]:
            continue
        body = json.loads(entry["body"])
        for tx in body.get("transactions", [body]):
            accepted[tx["transactionId"]] += 1
    return accepted


def _state(folder: Path) -> tuple[list[Any], list[Any], list[Any]]:
    store = open_state(os.environ.get("CONNECTOR_STATE_URL") or folder / ".connector" / "state.db")
    try:
        return (
            store.ledger_entries("gifts"),
            store.dead_letters("gifts"),
            store.in_flight("gifts"),
        )
    finally:
        store.close()


# (what to wrap, before or after it): after the batch is marked in flight, before its request;
# after Virtuous processed the request, before its answer is read; between the sink's answer
# and the commit that records it.
KILL_POINTS = [
    ("store.mark_in_flight", "after"),
    ("gifts._send", "after"),
    ("runner._write", "after"),
    ("store.commit", "before"),
]


@pytest.mark.parametrize("nth", [1, 3])
@pytest.mark.parametrize(("at", "when"), KILL_POINTS)
def test_a_run_killed_anywhere_around_a_batch_ends_exact(
    monkeypatch, write_recipe, invoke, tmp_path, at, when, nth
) -> None:
    _killed_then_run_again(monkeypatch, write_recipe, invoke, tmp_path, at, when, nth)


@pytest.mark.skipif(
    not os.environ.get("CONNECTOR_SOAK"),
    reason="8 more killed runs, each waiting out its lease (about 30 s): CONNECTOR_SOAK=1; by"
    " default tests/core/state/test_lease.py kills one run with Postgres state",
)
@pytest.mark.parametrize("nth", [1, 3])
@pytest.mark.parametrize(("at", "when"), KILL_POINTS)
def test_a_run_with_postgres_state_killed_anywhere_ends_exact(
    monkeypatch, write_recipe, invoke, tmp_path, at, when, nth
) -> None:
    from tests.core.state.backends import postgres_schema

    with postgres_schema() as url:
        monkeypatch.setenv("CONNECTOR_STATE_URL", url)
        monkeypatch.setenv("CONNECTOR_LEASE_SECONDS", "1")  # the killed run's lease: soon over
        _killed_then_run_again(monkeypatch, write_recipe, invoke, tmp_path, at, when, nth)


def _killed_then_run_again(
    monkeypatch, write_recipe, invoke, tmp_path, at: str, when: str, nth: int
) -> None:
    with serving(monkeypatch) as emulator:
        donations_csv(tmp_path / "donations.csv", 25)
        recipe = write_recipe(gifts_recipe(batch=10))
        assert _killed_run(recipe, emulator, at, nth, when) == -signal.SIGKILL
        told, _, stranded = _state(tmp_path)  # what the killed run committed, and left in flight
        rerun = report(invoke("run", recipe, "--json", "--wait"))
        final = report(invoke("run", recipe, "--json"))
        pending = [p["transactionId"] for p in emulator.state()["pending"]]
        accepted = _accepted(emulator)
    ledger, letters, in_flight = _state(tmp_path)
    wanted = sorted(f"g-{n}" for n in range(1, 26))
    assert sorted(pending) == wanted  # none lost, none twice
    assert sorted(accepted) == wanted
    assert set(accepted.values()) == {1}
    assert rerun["ok"]
    assert stranded or at == "store.commit"  # (the first commits are the run's opening ones)
    # The rerun counts, with their money, the gifts no report had told: none twice, none missed.
    assert rerun["outcomes"]["written"] == 25 - len(told)
    untold = [n for n in range(1, 26) if f"g-{n}" not in {e.key for e in told}]
    untold_total = sum(Decimal(1000 + n) for n in untold) / 100
    assert rerun["money"] == {"USD": str(untold_total.quantize(Decimal("0.01")))}  # USD: 2 places
    assert (letters, in_flight) == ([], [])
    assert sorted(e.key for e in ledger) == wanted
    assert final["outcomes"]["unchanged"] == 25


def _held_money(emulator: Virtuous) -> tuple[list[str], Decimal]:
    pending = emulator.state()["pending"]
    ids = [p["transactionId"] for p in pending]
    total = sum((Decimal(str(p["payload"]["amount"])) for p in pending), Decimal(0))
    return ids, total


@pytest.mark.parametrize(
    "faults",
    [
        {"lost_response_rate": 0.2, "seed": 11},
        {
            "error_rate": 0.25,
            "drop_rate": 0.15,
            "lost_response_rate": 0.2,
            "rate_limit_storm": 3,
            "storm_retry_after": 1,
            "seed": 5,
        },
    ],
    ids=["lost-responses", "mixed"],
)
def test_the_report_counts_what_virtuous_holds_when_answers_are_lost(
    monkeypatch, write_recipe, invoke, tmp_path, transaction_validation, faults
) -> None:
    mode = {"transaction_validation": transaction_validation, "faults": faults}
    with serving(monkeypatch, **mode) as emulator:
        donations_csv(tmp_path / "donations.csv", 300)
        result = report(invoke("run", write_recipe(gifts_recipe(batch=25)), "--json"))
        lost = [r for r in emulator.requests() if r["status"] is None]
        ids, total = _held_money(emulator)
        accepted = _accepted(emulator)
    assert lost  # Virtuous processed requests whose answers never came
    assert sorted(ids) == sorted(f"g-{n}" for n in range(1, 301))  # none lost, none twice
    assert set(accepted.values()) == {1}
    assert result["ok"], result["problems"]
    assert result["outcomes"]["written"] == len(ids) == 300
    assert result["outcomes"]["unchanged"] == 0
    assert result["money"] == {"USD": str(total)}


@pytest.mark.parametrize("repeated_reversal", ["accept", "refuse"])
def test_a_refund_in_doubt_after_a_kill_is_never_reversed_twice(
    monkeypatch, write_recipe, invoke, tmp_path, repeated_reversal
) -> None:
    with serving(monkeypatch, repeated_reversal=repeated_reversal) as emulator:
        donations_csv(tmp_path / "donations.csv", 3)
        report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
        emulator.import_now()
        rows = [
            {"id": f"re_{n}", "gift": f"g-{n}", "date": "2025-03-05", "cents": 1000 + n}
            for n in (1, 2, 3)
        ]
        write_jsonl(tmp_path / "refunds.jsonl", rows)
        refunds = write_recipe(REFUNDS_RECIPE, "refunds.yaml")
        # The second refund is reversed in Virtuous; the process dies before recording it.
        assert _killed_run(refunds, emulator, "reversals.write_one", 2, "after") == -9
        rerun = report(invoke("run", refunds, "--json"))
        again = report(invoke("run", refunds, "--json"))
        retried = report(invoke("dlq", "retry", refunds, "--json"))
        held = emulator.app.state.emulator.gifts.values()
        reversals = Counter(g.reversed_gift_id for g in held if g.reversed_gift_id)
    assert sorted(reversals.values()) == [1, 1, 1]  # each gift reversed once, whatever happens
    assert rerun["outcomes"] == {**rerun["outcomes"], "written": 1, "needs_review": 1}
    (problem,) = rerun["problems"]
    assert problem["key"] == "re_2"
    assert "not sent again" in problem["reason"]
    assert again["outcomes"]["needs_review"] == 1  # still in doubt, still not sent
    assert retried["outcomes"]["needs_review"] == 1


def test_a_refund_in_doubt_looked_for_by_hand_is_resolved_and_never_sent(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    """A person looks for the reversal in Virtuous (adding it if there is none), then `dlq
    resolve`s the refund: its mark and dead letter go, and no later run sends it or asks
    Virtuous about it again."""
    with serving(monkeypatch) as emulator:
        donations_csv(tmp_path / "donations.csv", 2)
        report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
        emulator.import_now()
        rows = [
            {"id": f"re_{n}", "gift": f"g-{n}", "date": "2025-03-05", "cents": 1000 + n}
            for n in (1, 2)
        ]
        write_jsonl(tmp_path / "refunds.jsonl", rows)
        refunds = write_recipe(REFUNDS_RECIPE, "refunds.yaml")
        assert _killed_run(refunds, emulator, "reversals.write_one", 2, "after") == -9
        in_doubt = invoke("run", refunds)
        [letter] = json.loads(invoke("dlq", "list", refunds, "--json").stdout)
        resolved = invoke("dlq", "resolve", refunds, "re_2")
        asked = len(emulator.requests())
        after = report(invoke("run", refunds, "--json"))
        unasked = len(emulator.requests()) == asked
        retried = report(invoke("dlq", "retry", refunds, "--json"))
        held = emulator.app.state.emulator.gifts.values()
        reversals = Counter(g.reversed_gift_id for g in held if g.reversed_gift_id)
    assert in_doubt.exit_code == 1
    assert f"then `connector dlq resolve {refunds} KEY...` records it" in in_doubt.stderr
    assert letter["next"] == f"connector dlq resolve {refunds} re_2"
    assert resolved.exit_code == 0, resolved.output
    assert after["ok"]
    assert after["outcomes"]["unchanged"] == 2
    assert unasked  # the mark went with the letter: nothing to look up, nothing to send
    assert retried["records_read"] == 0
    assert sorted(reversals.values()) == [1, 1]
    store = open_state(os.environ.get("CONNECTOR_STATE_URL") or tmp_path / ".connector/state.db")
    try:
        assert (store.in_flight("refunds"), store.dead_letters("refunds")) == ([], [])
    finally:
        store.close()
