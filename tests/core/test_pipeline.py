"""Pipelined writes: the next batch is read, mapped and validated while one is in flight, and
commits stay in order (a batch's ledger rows and cursor only after it and every batch before it
were answered); progress over records that need no write commits as the run goes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from core.outcomes import Outcome, WriteItem, WriteResult
from core.recipe import load_recipe
from core.registry import Registry
from core.runner import Runner
from core.sink import Sink
from core.source import Source
from core.state import Batch, InFlight, SqliteStateStore

RECIPE = """
version: 1
name: numbers
source:
  use: test.numbers
  with: {count: COUNT, fail_at: FAIL_AT, send_only: SEND_ONLY, overlap: OVERLAP}
filter: record.status != "skip"
map:
  id: record.id
  n: record.n
  version: record.version
sink:
  use: test.service
  with: {batch_size: BATCH, batches_in_flight: DEPTH}
"""


class _Broken(Exception):
    """The source's connection broke (a read error mid-run)."""


class _NumbersSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int
    fail_at: int | None = None
    send_only: int | None = None  # the other records are filtered out
    overlap: int = 0  # records before the cursor read again


class _Numbers(Source):
    """Records r1..rN with cursor n; counts what it yielded, for the sink to watch."""

    name = "test.numbers"
    Settings = _NumbersSettings
    yielded: ClassVar[int] = 0
    changed: ClassVar[set[int]] = set()  # records now at version 2
    settings: _NumbersSettings

    def read(self, cursor: Any | None) -> Iterator[dict[str, Any]]:
        start = max((cursor or 0) - self.settings.overlap, 0) + 1
        for n in range(start, self.settings.count + 1):
            if n == self.settings.fail_at:
                raise _Broken(f"connection reset at record {n}")
            send_only = self.settings.send_only
            status = "skip" if send_only is not None and n != send_only else "ok"
            type(self).yielded += 1
            version = 2 if n in self.changed else 1
            yield {"id": f"r{n}", "n": n, "status": status, "version": version}

    def cursor_value(self, record: Mapping[str, Any]) -> Any | None:
        return record["n"]


class _ServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int
    batches_in_flight: int = 1


class _Service:
    """What the fake service holds and saw; ``hold`` makes chosen writes wait or fail."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []
        self.writing = 0
        self.most_writing = 0
        self.lock = threading.Lock()
        self.hold: dict[int, Any] = {}  # batch number -> callable run before answering

    def write(self, batch: Sequence[WriteItem]) -> int:
        with self.lock:
            self.batches.append([item.key for item in batch])
            number = len(self.batches)
            self.writing += 1
            self.most_writing = max(self.most_writing, self.writing)
        try:
            for item in batch:
                self.held.setdefault(item.key, item.payload)
            if number in self.hold:
                self.hold[number]()
        finally:
            with self.lock:
                self.writing -= 1
        return number


class _FakeSink(Sink):
    name = "test.service"
    Settings = _ServiceSettings
    supports_update = True
    service: ClassVar[_Service]

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        self.service.write(batch)
        return [
            WriteResult(i.key, Outcome.UPDATED if i.is_update else Outcome.WRITTEN, f"s/{i.key}")
            for i in batch
        ]

    def recover(self, stranded: Sequence[InFlight]) -> list[WriteResult]:
        held = [item for item in stranded if item.key in self.service.held]
        return [WriteResult(item.key, Outcome.WRITTEN, sink_key=f"s/{item.key}") for item in held]


@pytest.fixture
def service(registry: Registry) -> _Service:
    registry.sources.add(_Numbers.name, _Numbers, "tests")
    registry.sinks.add(_FakeSink.name, _FakeSink, "tests")
    _Numbers.yielded, _Numbers.changed = 0, set()
    _FakeSink.service = _Service()
    return _FakeSink.service


@pytest.fixture
def numbers(tmp_path: Path, write_recipe, registry: Registry, service: _Service):
    def run(
        count: int,
        batch: int = 10,
        depth: int = 1,
        fail_at: int | None = None,
        send_only: int | None = None,
        overlap: int = 0,
    ):
        text = (
            RECIPE.replace("COUNT", str(count))
            .replace("FAIL_AT", "null" if fail_at is None else str(fail_at))
            .replace("SEND_ONLY", "null" if send_only is None else str(send_only))
            .replace("BATCH", str(batch))
            .replace("DEPTH", str(depth))
            .replace("OVERLAP", str(overlap))
        )
        recipe = load_recipe(write_recipe(text), registry)
        state = SqliteStateStore(tmp_path / "state.db")
        try:
            return Runner(recipe, state).run()
        finally:
            state.close()

    return run


def _state(tmp_path: Path) -> tuple[Any, list[str], list[str]]:
    """The committed cursor, ledger keys and keys still in flight."""
    state = SqliteStateStore(tmp_path / "state.db")
    try:
        return (
            state.cursor("numbers"),
            sorted(e.key for e in state.ledger_entries("numbers")),
            sorted(i.key for i in state.in_flight("numbers")),
        )
    finally:
        state.close()


def _keys(first: int, last: int) -> list[str]:
    return sorted(f"r{n}" for n in range(first, last + 1))


def test_the_next_batch_is_read_and_mapped_while_one_is_in_flight(numbers, service) -> None:
    overlapped = threading.Event()

    def wait_for_the_next_batch() -> None:
        start = _Numbers.yielded
        deadline = threading.Event()
        for _ in range(500):  # up to 5 s; a runner that waits for this answer never gets there
            if _Numbers.yielded >= start + 10:  # the whole next batch read and mapped
                overlapped.set()
                return
            deadline.wait(0.01)

    service.hold[1] = wait_for_the_next_batch
    report = numbers(count=50, batch=10)
    assert overlapped.is_set()
    assert report.counts[Outcome.WRITTEN] == 50
    assert len(service.batches) == 5
    assert service.most_writing == 1  # one batch in flight at a time by default


def test_batches_commit_in_order_though_a_later_one_is_answered_first(
    numbers, service, tmp_path, monkeypatch
) -> None:
    second_answered = threading.Event()
    seen_when_second_answered: list[Any] = []

    def slow() -> None:  # batch 1 is answered after batch 2
        assert second_answered.wait(5)

    def fast() -> None:
        seen_when_second_answered.append(_state(tmp_path))
        second_answered.set()

    service.hold.update({1: slow, 2: fast})
    commits: list[list[str]] = []
    real_commit = SqliteStateStore.commit

    def watching(self: SqliteStateStore, recipe: str, batch: Batch) -> None:
        if batch.ledger:
            commits.append(sorted(key for key, *_ in batch.ledger))
        real_commit(self, recipe, batch)

    monkeypatch.setattr(SqliteStateStore, "commit", watching)
    report = numbers(count=40, batch=10, depth=2)
    assert report.counts[Outcome.WRITTEN] == 40
    assert service.most_writing == 2  # two batches in flight, never more
    # When batch 2 was answered, nothing of it (nor of batch 1) had committed.
    assert seen_when_second_answered == [(None, [], _keys(1, 20))]
    assert commits == [_keys(1, 10), _keys(11, 20), _keys(21, 30), _keys(31, 40)]
    assert _state(tmp_path) == (40, _keys(1, 40), [])


def test_a_failed_batch_keeps_the_answered_batches_after_it_in_flight(
    numbers, service, tmp_path
) -> None:
    def power_cut() -> None:
        raise _Broken("the connection dropped after the service took batch 2")

    later_answered = threading.Event()
    service.hold[2] = lambda: (later_answered.wait(5), power_cut())
    service.hold[3] = later_answered.set  # batch 3 is answered before batch 2 fails
    with pytest.raises(_Broken):
        numbers(count=40, batch=10, depth=2)
    cursor, ledger, in_flight = _state(tmp_path)
    assert (cursor, ledger) == (10, _keys(1, 10))  # only what precedes the failure commits
    assert in_flight == _keys(11, 30)  # batch 3 was answered, but follows the failed one
    # The next run looks them up (the service holds them) instead of sending them again.
    service.hold.clear()
    report = numbers(count=40, batch=10, depth=2)
    assert report.counts[Outcome.WRITTEN] == 30
    assert [len(b) for b in service.batches] == [10, 10, 10, 10]  # r31..r40 sent once more
    assert _state(tmp_path) == (40, _keys(1, 40), [])


def test_a_long_stretch_of_filtered_records_commits_its_progress(numbers, tmp_path) -> None:
    with pytest.raises(_Broken):
        numbers(count=12_000, fail_at=11_000, send_only=-1)
    cursor, ledger, _ = _state(tmp_path)
    assert cursor == 10_000  # committed every 5,000 records read; not read again
    assert ledger == []


def test_the_cursor_never_passes_a_record_not_yet_written(numbers, service, tmp_path) -> None:
    # r7 is the only record to send; the 10,000 filtered after it wait with it for a full batch.
    with pytest.raises(_Broken):
        numbers(count=12_000, fail_at=11_000, send_only=7)
    cursor, ledger, in_flight = _state(tmp_path)
    assert (cursor, ledger, in_flight) == (6, [], [])
    assert service.batches == []
    report = numbers(count=12_000, send_only=7)
    assert report.counts[Outcome.WRITTEN] == 1
    assert report.requests_minimum == 1
    assert _state(tmp_path) == (12_000, ["r7"], [])


def test_unchanged_records_between_changed_ones_do_not_split_batches(
    numbers, service, tmp_path
) -> None:
    numbers(count=1000, batch=100)
    first = len(service.batches)
    _Numbers.changed = {n for n in range(1, 1001) if n % 3 == 0}  # 333, two unchanged between
    report = numbers(count=1000, batch=100, overlap=1000)
    assert (report.counts[Outcome.UPDATED], report.counts[Outcome.UNCHANGED]) == (333, 667)
    assert [len(b) for b in service.batches[first:]] == [100, 100, 100, 33]  # was 10 of 33
    assert (report.requests_minimum, _state(tmp_path)[0]) == (4, 1000)
