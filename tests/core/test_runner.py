"""The runner: outcomes, idempotent re-runs, updates, crash safety, dead letters."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from connectors.files.jsonl_file import JsonlSink
from core.errors import RecipeValidationError, RunInProgressError
from core.outcomes import Outcome, WriteItem, WriteResult
from core.plugins import load_plugins
from core.recipe import load_recipe
from core.registry import Registry
from core.runner import Runner
from core.source import Source
from core.state import InFlight, open_state
from tests.conftest import read_jsonl, write_jsonl
from tests.core.state.backends import store_class as store_class_of

RECIPE = """
version: 1
name: gifts
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
filter: record.status != "failed"
map:
  id: record.id
  amount: record.cents | minor_to_major(record.currency)
  currency: record.currency | upper
  email: record.email | lower
sink:
  use: file.jsonl
  with: {path: out.jsonl, batch_size: 2}
"""


@pytest.fixture
def registry() -> Registry:
    """A registry of each test's own: tests here register test components, which must not leak
    into the session's (``connector plugins`` lists every registered name)."""
    return load_plugins(load_entrypoints=False)[1]


def donations(n: int, **changes: dict[str, object]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            "id": f"d{i}",
            "cents": 100 * i,
            "currency": "usd",
            "email": f"D{i}@X.ORG",
            "status": "succeeded",
        }
        for i in range(1, n + 1)
    ]
    for row in rows:
        row.update(changes.get(str(row["id"]), {}))
    return rows


@pytest.fixture
def setup(
    tmp_path: Path, write_recipe: Callable[..., Path], registry: Registry, state_location: str
):
    path = write_recipe(RECIPE)

    def run(**kwargs: object):
        recipe = load_recipe(path, registry)
        state = open_state(state_location)
        try:
            return Runner(recipe, state, **kwargs).run()  # type: ignore[arg-type]
        finally:
            state.close()

    return tmp_path, run


def test_first_run_writes_every_record(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(5))
    report = run()
    assert report.counts[Outcome.WRITTEN] == 5
    assert report.ok
    out = read_jsonl(tmp / "out.jsonl")
    assert [r["id"] for r in out] == ["d1", "d2", "d3", "d4", "d5"]
    assert out[0] == {"id": "d1", "amount": "1.00", "currency": "USD", "email": "d1@x.org"}
    assert str(report.money["USD"]) == "15.00"


def test_second_run_writes_nothing(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(5))
    run()
    report = run()
    assert report.counts[Outcome.UNCHANGED] == 5
    assert report.counts[Outcome.WRITTEN] == 0
    assert len(read_jsonl(tmp / "out.jsonl")) == 5


def test_changed_records_become_exactly_the_expected_updates(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(4))
    run()
    write_jsonl(tmp / "in.jsonl", donations(5, d2={"cents": 999}, d4={"email": "new@x.org"}))
    report = run()
    assert report.counts[Outcome.UPDATED] == 2
    assert report.counts[Outcome.WRITTEN] == 1
    assert report.counts[Outcome.UNCHANGED] == 2
    out = read_jsonl(tmp / "out.jsonl")
    assert [r["id"] for r in out[4:]] == ["d2", "d4", "d5"]
    assert out[4]["amount"] == "9.99"


def test_filtered_records_are_counted_not_written(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(3, d2={"status": "failed"}))
    report = run()
    assert report.counts[Outcome.FILTERED] == 1
    assert [r["id"] for r in read_jsonl(tmp / "out.jsonl")] == ["d1", "d3"]


def test_a_bad_record_is_dead_lettered_and_the_run_goes_on(setup, state_location) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(3, d2={"cents": "lots"}))
    report = run()
    assert report.counts[Outcome.WRITTEN] == 2
    assert report.counts[Outcome.INVALID] == 1
    assert not report.ok
    state = open_state(state_location)
    [letter] = state.dead_letters("gifts")
    assert letter.key == "d2"
    assert letter.field == "amount"
    assert letter.record["cents"] == "lots"


def test_a_broken_input_line_is_dead_lettered(setup) -> None:
    tmp, run = setup
    (tmp / "in.jsonl").write_text('{"id": "d1", "cents": 1, "currency": "usd"}\n{oops\n')
    report = run()
    assert report.counts[Outcome.WRITTEN] == 1
    assert report.counts[Outcome.INVALID] == 1
    assert report.problems[0].key == "line:2"


def test_a_broken_line_is_not_written_by_a_replay_and_clears_once_fixed(
    setup, registry, write_recipe, state_location
) -> None:
    tmp, run = setup
    good = '{"id": "d1", "cents": 1, "currency": "usd"}\n'
    (tmp / "in.jsonl").write_text(good + '{"id": "d2", "cents": \n')
    run()
    state = open_state(state_location)
    try:
        replayed = Runner(load_recipe(write_recipe(RECIPE), registry), state).replay()
        assert replayed.counts[Outcome.INVALID] == 1
        assert "fix the input, then run the recipe again" in replayed.problems[0].reason
        assert [r["id"] for r in read_jsonl(tmp / "out.jsonl")] == ["d1"]

        (tmp / "in.jsonl").write_text(good + '{"id": "d2", "cents": 2, "currency": "usd"}\n')
        assert run().counts[Outcome.WRITTEN] == 1
        assert state.dead_letters("gifts") == []
    finally:
        state.close()
    assert [r["id"] for r in read_jsonl(tmp / "out.jsonl")] == ["d1", "d2"]


def test_a_record_read_twice_in_one_run_is_counted_twice_and_written_once(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(2) + donations(1))
    report = run()
    assert report.records_read == 3
    assert (report.counts[Outcome.WRITTEN], report.counts[Outcome.UNCHANGED]) == (2, 1)
    assert [r["id"] for r in read_jsonl(tmp / "out.jsonl")] == ["d1", "d2"]


def test_dead_letters_are_committed_as_the_run_goes(setup, monkeypatch, state_location) -> None:
    """A run where every record fails holds a bounded number of dead letters, not all of them."""
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", [{"id": f"d{i}", "cents": "many"} for i in range(2500)])
    held = []
    store_class = store_class_of(state_location)
    real_commit = store_class.commit

    def watching_commit(self, recipe, batch):
        held.append(len(batch.dead_letters))
        real_commit(self, recipe, batch)

    monkeypatch.setattr(store_class, "commit", watching_commit)
    assert run().counts[Outcome.INVALID] == 2500
    assert max(held) <= 1000
    assert sum(held) == 2500


def test_a_second_run_of_the_same_recipe_is_refused_while_the_first_runs(
    setup, state_location
) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(2))
    state = open_state(state_location)
    try:
        with state.lock("gifts"), pytest.raises(RunInProgressError, match="in progress"):
            run()
        assert not (tmp / "out.jsonl").exists()
        assert run(dry_run=True).counts[Outcome.WRITTEN] == 2  # a dry run only looks
    finally:
        state.close()
    assert run().counts[Outcome.WRITTEN] == 2


@pytest.mark.parametrize("crash_on_commit", [1, 2, 3])
def test_a_crash_after_a_batch_then_a_rerun_equals_an_uninterrupted_run(
    setup, monkeypatch: pytest.MonkeyPatch, crash_on_commit: int, state_location
) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(7))
    store_class = store_class_of(state_location)
    real_commit = store_class.commit
    calls = {"n": 0}

    def crashing_commit(self, recipe, batch):  # the sink wrote the batch; the commit dies
        calls["n"] += 1
        if calls["n"] == crash_on_commit:
            raise RuntimeError("power cut")
        real_commit(self, recipe, batch)

    monkeypatch.setattr(store_class, "commit", crashing_commit)
    with pytest.raises(RuntimeError, match="power cut"):
        run()
    monkeypatch.setattr(store_class, "commit", real_commit)
    report = run()
    assert report.ok
    assert [r["id"] for r in read_jsonl(tmp / "out.jsonl")] == [f"d{i}" for i in range(1, 8)]
    assert report.counts[Outcome.WRITTEN] + report.counts[Outcome.UNCHANGED] == 7


def test_dry_run_writes_nothing_and_keeps_no_state(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(3))
    report = run(dry_run=True)
    assert report.counts[Outcome.WRITTEN] == 3
    assert not (tmp / "out.jsonl").exists()
    assert run().counts[Outcome.WRITTEN] == 3


def test_limit_stops_after_n_records(setup) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(5))
    assert run(limit=2).records_read == 2
    assert len(read_jsonl(tmp / "out.jsonl")) == 2
    assert run().counts[Outcome.WRITTEN] == 3


def test_replaying_dead_letters_after_a_recipe_fix(
    setup, write_recipe, registry, state_location
) -> None:
    tmp, run = setup
    write_jsonl(tmp / "in.jsonl", donations(2, d2={"cents": "lots"}))
    assert run().counts[Outcome.INVALID] == 1
    fixed = write_recipe(
        RECIPE.replace(
            "amount: record.cents | minor_to_major(record.currency)",
            "amount: \"0 if record.cents == 'lots'"
            ' else record.cents | minor_to_major(record.currency)"',
        )
    )
    state = open_state(state_location)
    try:
        report = Runner(load_recipe(fixed, registry), state).replay()
        assert report.counts[Outcome.WRITTEN] == 1
        assert state.dead_letters("gifts") == []
    finally:
        state.close()
    assert [r["id"] for r in read_jsonl(tmp / "out.jsonl")] == ["d1", "d2"]


def test_a_replayed_record_keeps_its_exact_numbers(
    setup, write_recipe, registry, state_location
) -> None:
    tmp, run = setup
    (tmp / "in.jsonl").write_text('{"id": "d1", "cents": "many", "currency": "usd", "tip": 0.1}\n')
    assert run().counts[Outcome.INVALID] == 1
    fixed = write_recipe(
        RECIPE.replace(
            "amount: record.cents | minor_to_major(record.currency)", "amount: record.tip + 0.2"
        )
    )
    state = open_state(state_location)
    try:
        assert Runner(load_recipe(fixed, registry), state).replay().counts[Outcome.WRITTEN] == 1
    finally:
        state.close()
    assert read_jsonl(tmp / "out.jsonl")[0]["amount"] == "0.3"  # not 0.30000000000000004


class _AlreadyThere(JsonlSink):
    """A sink that finds every record already present, as Virtuous does with a repeated
    (transactionSource, transactionId)."""

    name = "test.already_there"

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        return [WriteResult(item.key, Outcome.UNCHANGED) for item in batch]


def test_money_counts_only_what_this_run_wrote(
    tmp_path, write_recipe, registry, state_location
) -> None:
    registry.sinks.add(_AlreadyThere.name, _AlreadyThere, "tests")
    write_jsonl(tmp_path / "in.jsonl", donations(2))
    recipe = write_recipe(
        RECIPE.replace(
            "use: file.jsonl\n  with: {path: out", "use: test.already_there\n  with: {path: out"
        )
    )
    state = open_state(state_location)
    try:
        report = Runner(load_recipe(recipe, registry), state).run()
    finally:
        state.close()
    assert report.counts[Outcome.UNCHANGED] == 2
    assert report.money == {}


class _Changes(Source):
    """An incremental source: each change of a record comes with a rising sequence number, and a
    run resumes after the committed one. ``boom`` stands for a crash mid-read."""

    name = "test.changes"
    rows: ClassVar[list[dict[str, Any]]] = []

    def read(self, cursor: Any | None) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            if cursor is None or row["seq"] > cursor:
                if row.get("boom"):
                    raise RuntimeError("power cut")
                yield row

    def cursor_value(self, record: Mapping[str, Any]) -> Any:
        return record["seq"]


def test_a_crash_after_a_record_changed_twice_in_one_batch_loses_no_change(
    tmp_path, write_recipe, registry, state_location
) -> None:
    registry.sources.add(_Changes.name, _Changes, "tests")
    recipe = write_recipe(
        RECIPE.replace("use: file.jsonl\n  with: {path: in.jsonl, key: id}", "use: test.changes")
    )
    first, second = (
        {"id": "d1", "cents": 100, "currency": "usd", "seq": 1},
        {"seq": 2, "cents": 200},
    )
    _Changes.rows = [first, {**first, **second}, {"id": "d9", "seq": 3, "boom": True}]
    state = open_state(state_location)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            Runner(load_recipe(recipe, registry), state).run()
        _Changes.rows = _Changes.rows[:2]
        Runner(load_recipe(recipe, registry), state).run()
    finally:
        state.close()
    assert read_jsonl(tmp_path / "out.jsonl")[-1]["amount"] == "2.00"  # the second change landed


def test_hooks_hear_dead_letters_and_the_end_of_the_run(
    tmp_path, write_recipe, registry, state_location
) -> None:
    from core import hookimpl
    from core.plugins import load_plugins

    heard: list[tuple[str, object]] = []

    class Alerts:
        @hookimpl
        def connector_record_dead_lettered(self, recipe: str, key: str, field: str | None) -> None:
            heard.append(("dead", (recipe, key, field)))

        @hookimpl
        def connector_after_run(self, report: dict[str, object]) -> None:
            heard.append(("after", report["outcomes"]))

    pm, _ = load_plugins(load_entrypoints=False)
    pm.register(Alerts(), "alerts")
    write_jsonl(tmp_path / "in.jsonl", donations(2, d1={"cents": "lots"}))
    state = open_state(state_location)
    try:
        Runner(load_recipe(write_recipe(RECIPE), registry), state, pm=pm).run()
    finally:
        state.close()
    assert heard[0] == ("dead", ("gifts", "d1", "amount"))
    assert heard[1][0] == "after"
    assert heard[1][1]["written"] == 1  # type: ignore[index]


class _Pledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    amount: Decimal


class _PledgeFile(JsonlSink):
    """A file sink that, like the Virtuous sinks, checks each payload against a model."""

    name = "test.pledges"
    Model = _Pledge


def _pledge_recipe(registry: Registry, mapped_amount: str) -> str:
    registry.sinks.add(_PledgeFile.name, _PledgeFile, "tests")
    recipe_text = RECIPE.replace(
        "use: file.jsonl\n  with: {path: out", "use: test.pledges\n  with: {path: out"
    )
    return recipe_text.replace(
        "  amount: record.cents | minor_to_major(record.currency)\n", f"  {mapped_amount}\n"
    ).replace("  currency: record.currency | upper\n  email: record.email | lower\n", "")


def test_a_missing_source_field_is_dead_lettered_naming_the_field_and_the_expression(
    tmp_path, write_recipe, registry, state_location
) -> None:
    recipe_text = _pledge_recipe(registry, "amount: record.cents | minor_to_major(record.currency)")
    write_jsonl(tmp_path / "in.jsonl", donations(2, d2={"cents": None}))
    state = open_state(state_location)
    try:
        report = Runner(load_recipe(write_recipe(recipe_text), registry), state).run()
        dead = state.dead_letters("gifts")
    finally:
        state.close()
    reason = (
        "a value is required, but 'record.cents | minor_to_major(record.currency)' gave null"
        " (is the source field missing?)"
    )
    assert [(d.key, d.field, d.reason) for d in dead][-1] == ("d2", "amount", reason)
    assert report.counts[Outcome.INVALID] == 1


def test_a_map_that_never_sets_a_required_field_is_refused_before_a_run(
    write_recipe, registry
) -> None:
    with pytest.raises(RecipeValidationError, match="test.pledges requires amount"):
        load_recipe(write_recipe(_pledge_recipe(registry, "")), registry)


class _Service:
    """What a fake service holds, and what a sink sent it, shared by the runs of one test."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, Any]] = {}
        self.sent: list[tuple[str, bool]] = []  # (key, resent)
        self.crash_after: int | None = None  # requests answered before the process "dies"
        self.lookups: list[str] = []
        self.knowable = True


class _PowerCut(BaseException):
    """The process dies: nothing after this point runs (not an Exception, so nothing catches it)."""


class _LookingUp(JsonlSink):
    """A sink for a service that keeps what it is sent and can be asked about a record."""

    name = "test.looking_up"
    service: ClassVar[_Service]

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        for item in batch:
            self.service.held.setdefault(item.key, item.payload)
            self.service.sent.append((item.key, item.resent))
        if self.service.crash_after is not None:
            self.service.crash_after -= 1
            if self.service.crash_after < 0:
                raise _PowerCut  # the service holds the batch; the answer never arrives
        return [WriteResult(item.key, Outcome.WRITTEN, sink_key=f"s/{item.key}") for item in batch]

    def reference(self, item: WriteItem) -> str | None:
        return f"ref:{item.key}"

    def recover(self, stranded: Sequence[Any]) -> list[WriteResult]:
        results = []
        for item in stranded:
            self.service.lookups.append(item.sink_ref)
            if not self.service.knowable:
                reason = "cannot tell whether it arrived; check by hand"
                results.append(WriteResult(item.key, Outcome.NEEDS_REVIEW, reason=reason))
            elif item.key in self.service.held and item.key != "d3":  # d3: "still processing"
                results.append(WriteResult(item.key, Outcome.WRITTEN, sink_key=f"s/{item.key}"))
        return results


@pytest.fixture
def looking_up(tmp_path, write_recipe, registry, state_location):
    registry.sinks.add(_LookingUp.name, _LookingUp, "tests")
    _LookingUp.service = _Service()
    recipe = write_recipe(
        RECIPE.replace(
            "use: file.jsonl\n  with: {path: out", "use: test.looking_up\n  with: {path: out"
        )
    )

    def run(replay: bool = False):
        state = open_state(state_location)
        try:
            runner = Runner(load_recipe(recipe, registry), state)
            return runner.replay() if replay else runner.run(), state.in_flight("gifts")
        finally:
            state.close()

    return _LookingUp.service, run


def test_records_sent_by_a_stopped_run_are_looked_up_before_they_are_sent_again(
    tmp_path, looking_up
) -> None:
    service, run = looking_up
    write_jsonl(tmp_path / "in.jsonl", donations(5))
    service.crash_after = 1  # batch 1 answered and committed; batch 2 sent, then the power cut
    with pytest.raises(_PowerCut):
        run()
    service.crash_after = None
    report, stranded = run()
    assert stranded == []  # every mark cleared with the answer it waited for
    # d4 was found in the service: recorded, never sent again. d3 was not found (the service
    # was still processing it): sent again, flagged, so that a repeat refusal counts as written.
    assert service.lookups == ["ref:d3", "ref:d4"]
    assert [sent for sent in service.sent if sent[0] in ("d3", "d4")] == [
        ("d3", False),
        ("d4", False),
        ("d3", True),
    ]
    assert sorted(service.held) == [f"d{i}" for i in range(1, 6)]
    # Everything the crashed run sent and no report told is counted once, with its money.
    assert report.counts[Outcome.WRITTEN] == 3  # d3, d4, d5
    assert report.counts[Outcome.UNCHANGED] == 2  # d1, d2: the first run's report told them
    assert report.money == {"USD": Decimal("12.00")}
    again, _ = run()
    assert again.counts[Outcome.UNCHANGED] == 5
    assert len(service.sent) == 6


def test_a_record_whose_fate_cannot_be_known_is_never_sent_twice(tmp_path, looking_up) -> None:
    service, run = looking_up
    write_jsonl(tmp_path / "in.jsonl", donations(3))
    service.crash_after = 0
    with pytest.raises(_PowerCut):
        run()
    service.crash_after, service.knowable = None, False
    report, stranded = run()
    assert report.counts[Outcome.NEEDS_REVIEW] == 2  # d1, d2: the batch in flight
    assert report.counts[Outcome.WRITTEN] == 1  # d3 was never sent
    assert "check by hand" in report.problems[0].reason
    assert [key for key, _ in service.sent] == ["d1", "d2", "d3"]
    assert sorted(s.key for s in stranded) == ["d1", "d2"]  # still unknown: the marks stay
    replayed, _ = run(replay=True)
    assert replayed.counts[Outcome.NEEDS_REVIEW] == 2
    assert [key for key, _ in service.sent] == ["d1", "d2", "d3"]  # not even by `dlq retry`


def test_a_record_in_flight_keeps_a_lone_surrogate_it_holds(tmp_path, state_location) -> None:
    # Valid in JSON text, not in UTF-8: marking the record in flight must not fail the run.
    state = open_state(state_location)
    try:
        mark = InFlight("d1", "digest", None, {"note": "\udc80 é"}, {"note": "\udc80"})
        state.mark_in_flight("gifts", [mark])
        assert state.in_flight("gifts")[0].payload == {"note": "\udc80 é"}
    finally:
        state.close()


def test_a_payload_its_sink_refuses_is_dead_lettered_in_the_validator_s_words() -> None:
    from connectors.virtuous.gift_transactions import GiftTransactions
    from core.errors import InvalidRecord
    from core.runner import validate_payload

    contact = {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org"}
    payload = {"transactionSource": "CSV", "transactionId": "d-1", "contact": contact}
    payload |= {"giftDate": "2025-01-01", "giftType": "Nope", "amount": "10.00"}
    with pytest.raises(InvalidRecord) as caught:
        validate_payload(GiftTransactions, payload)
    assert caught.value.message.startswith("unknown gift type 'Nope'; valid: Cash,")
    assert caught.value.field == "giftType"
