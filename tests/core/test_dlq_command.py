"""``connector dlq``: what ``dlq resolve`` takes (the letters left for a person) and records,
what it refuses (naming the command that helps), and the hint after a run for each kind of
dead letter."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import output
from core.hints import hint_target
from core.outcomes import LedgerEntry, Outcome
from core.report import RunReport
from core.state import Batch, DeadLetter, InFlight, open_state
from tests.conftest import write_jsonl

RECIPE = """
version: 1
name: charges
source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
map:
  id: record.id
sink: {use: file.jsonl, with: {path: out.jsonl}}
"""

PARTIAL = DeadLetter(
    "partial",
    Outcome.NEEDS_REVIEW,
    "partial refund of 5.00 on gift 7 of 10.01; adjust this one by hand",
    None,
    {"id": "partial"},
    digest="a" * 64,
)
CHANGED = DeadLetter(
    "changed", Outcome.NEEDS_REVIEW, "changed since it was written", None, {}, digest="b" * 64
)
REFUSED = DeadLetter("refused", Outcome.INVALID, "amount: not a number", "amount", {}, digest="c")
FAILED = DeadLetter("failed", Outcome.FAILED, "kept failing after retries", None, {})
#: a needs_review kept before the runner kept its payload's digest
OLD = DeadLetter("old", Outcome.NEEDS_REVIEW, "no Virtuous contact matches", None, {})


def _seed(location: str, batch: Batch, in_flight: list[InFlight] | None = None) -> None:
    store = open_state(location)
    try:
        if in_flight:
            store.mark_in_flight("charges", in_flight)
        store.commit("charges", batch)
    finally:
        store.close()


def _stored(location: str) -> tuple[dict[str, LedgerEntry], list[str], list[str]]:
    """The ledger by key, the dead letters' keys and the in-flight keys of ``charges``."""
    store = open_state(location)
    try:
        ledger = {entry.key: entry for entry in store.ledger_entries("charges")}
        letters = sorted(d.key for d in store.dead_letters("charges"))
        return ledger, letters, [item.key for item in store.in_flight("charges")]
    finally:
        store.close()


@pytest.fixture
def recipe(write_recipe, tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "in.jsonl", [])
    return Path(write_recipe(RECIPE))


def test_resolve_takes_each_letter_left_for_a_person_into_the_ledger(
    recipe, invoke, state_location
) -> None:
    """A partial refund (never written) and a change to apply (written before, sink key kept):
    both become ledger rows of the payload the letter kept, and leave the list."""
    written = [("changed", "0" * 64, "s-1", Outcome.WRITTEN)]
    _seed(state_location, Batch(ledger=written, dead_letters=[PARTIAL, CHANGED]))
    state = ("--state", state_location)
    result = invoke("dlq", "resolve", recipe, "partial", "changed", "partial", *state)
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 record(s) of charges resolved: the next run leaves them alone\n"
    ledger, letters, _ = _stored(state_location)
    assert letters == []
    partial, changed = ledger["partial"], ledger["changed"]
    assert (partial.payload_hash, partial.sink_key, partial.outcome) == (
        "a" * 64,
        None,
        Outcome.WRITTEN,
    )
    assert (changed.payload_hash, changed.sink_key, changed.outcome) == (
        "b" * 64,
        "s-1",
        Outcome.UPDATED,
    )
    assert invoke("dlq", "list", recipe, "--json", *state).stdout.strip() == "[]"


def test_a_refund_in_doubt_kept_without_a_digest_is_resolved_as_it_was_sent(
    recipe, invoke, state_location
) -> None:
    """A letter from before letters kept the digest: what was sent is in its in-flight mark,
    which goes with it (else the next run would ask the service about it again)."""
    doubt = DeadLetter("doubt", Outcome.NEEDS_REVIEW, "look for the reversal", None, {})
    sent = InFlight("doubt", "d" * 64, "/api/Gift/Test/g-2", {"amount": 1}, {"id": "doubt"})
    _seed(state_location, Batch(dead_letters=[doubt]), in_flight=[sent])
    assert invoke("dlq", "resolve", recipe, "doubt", "--state", state_location).exit_code == 0
    ledger, letters, in_flight = _stored(state_location)
    assert ledger["doubt"].payload_hash == "d" * 64
    assert (letters, in_flight) == ([], [])


def test_resolve_refuses_each_key_it_cannot_take_and_resolves_none(
    recipe, invoke, state_location
) -> None:
    _seed(state_location, Batch(dead_letters=[PARTIAL, REFUSED, FAILED, OLD]))
    keys = ("partial", "refused", "failed", "old", "nosuch")
    result = invoke("dlq", "resolve", recipe, *keys, "--state", state_location)
    target = hint_target(recipe, state_location)
    assert result.exit_code == 2
    said = result.stderr
    assert (
        f"'refused' of recipe charges is invalid, which a retry can fix: `connector dlq retry"
        f" {target}` sends it again (an invalid one after fixing its record or the recipe)"
    ) in said
    assert "'failed' of recipe charges is failed, which a retry can fix" in said
    assert "'old' of recipe charges was dead-lettered before connector kept" in said
    assert f"`connector dlq retry {target}` asks the service again" in said
    assert f"no dead letter 'nosuch' for recipe charges: `connector dlq list {target}`" in said
    assert "nothing was resolved" in said
    assert "partial" not in said  # the one it could take is not blamed
    ledger, letters, _ = _stored(state_location)
    assert (ledger, letters) == ({}, ["failed", "old", "partial", "refused"])


def test_show_of_an_unknown_key_names_the_command_that_lists_them(recipe, invoke) -> None:
    result = invoke("dlq", "show", recipe, "ch_9", "--state", "elsewhere.db")
    assert result.exit_code == 2
    target = f"{recipe} --state elsewhere.db"
    assert f"no dead letter 'ch_9' for recipe charges: `connector dlq list {target}`" in (
        result.stderr
    )


def test_the_run_names_the_command_each_kind_of_dead_letter_needs(capsys) -> None:
    """Refused and failed records are sent again; one left for a person (a change the sink
    cannot make, a partial refund) is handled by hand, then resolved, never retried."""
    report = RunReport(recipe="refunds", records_read=9)
    report.counts.update({Outcome.INVALID: 1, Outcome.FAILED: 1, Outcome.NEEDS_REVIEW: 3})
    report.to_apply = 1
    output.print_report(report, "refunds.yaml")
    said = capsys.readouterr().err
    assert (
        "2 record(s) need attention: `connector dlq list refunds.yaml` shows them,"
        " `connector dlq retry refunds.yaml` sends them again"
    ) in said
    assert "1 record(s) changed after they were written, and the sink cannot update" in said
    assert (
        "2 record(s) need a person, who does in the service what each reason above says; then"
        " `connector dlq resolve refunds.yaml KEY...` records it, and the next run leaves it"
        " alone"
    ) in said

    left = RunReport(recipe="refunds", records_read=1)
    left.counts[Outcome.NEEDS_REVIEW] = 1
    output.print_report(left, "refunds.yaml")
    assert "dlq retry" not in capsys.readouterr().err
