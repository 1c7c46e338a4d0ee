"""A scheduled run that fails is tried again after 1, 2, 4 ... minutes (at most an hour, and at
the schedule's next firing at the latest), counted in the state every worker shares: not at
every look of every worker, which spent the organization's Virtuous budget on a refused key, a
try every 5 seconds, for hours."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from core.cli import Session
from core.outcomes import Outcome
from core.worker.scheduler import Ran, Scheduler
from tests.connectors.virtuous.support import KEY, Virtuous, serving
from tests.core.worker.support import (
    gift_ids,
    scheduled_gifts,
    start_worker,
    stderr_until,
    worker_env,
)

NOON = 1_796_040_000.0  # 2026-11-30T12:00:00Z, when an hourly schedule fires
MINUTE = 60.0
YEARLY = "0 0 1 1 *"


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch) -> Iterator[Virtuous]:
    """The emulator, refusing the key the recipes are given."""
    with serving(monkeypatch) as emulator:
        monkeypatch.setenv("VIRTUOUS_API_KEY", "refused-key")
        yield emulator


class Worker:
    """A scheduler on a fake clock (minutes past noon), and the runs it made."""

    def __init__(self, recipe: Path, location: str, clock: list[float]) -> None:
        self.path, self.session, self.clock = recipe, Session(), clock
        self.ran: list[Ran] = []
        self.scheduler = Scheduler(
            [self.session.recipe(recipe)],
            lambda r: location,
            pm=self.session.pm,
            on_run=self.ran.append,
            clock=lambda: NOON + clock[0] * MINUTE,
        )

    def look(self) -> list[Ran]:
        return self.scheduler.run_due(self.scheduler.clock())

    def restart(self) -> None:
        """Started again with the environment as it is now (the key fixed, or not)."""
        self.scheduler.recipes = [self.session.recipe(self.path)]


def scheduled(tmp_path: Path, schedule: str = "0 * * * *") -> Path:
    """A recipe of 3 gifts run on ``schedule`` (every hour)."""
    folder = scheduled_gifts(tmp_path / "recipes", recipes=1, gifts=3, batch=10, schedule=schedule)
    return folder / "gifts-0.yaml"


def beside(recipe: Path) -> str:
    return str(recipe.parent / ".connector" / "state.db")


def every(seconds: float, start: float, end: float) -> list[float]:
    """Looks every ``seconds`` from minute ``start`` to before minute ``end``."""
    step = seconds / MINUTE
    return [start + n * step for n in range(round((end - start) / step))]


def attempts(workers: list[Worker], looks: Iterable[float]) -> list[float]:
    """Let ``workers`` take turns looking at ``looks`` (minutes past noon); the minutes at which
    one of them tried a run."""
    clock, tried = workers[0].clock, []
    for n, minute in enumerate(looks):
        clock[0] = minute
        tried += [minute for _ in workers[n % len(workers)].look()]
    return tried


def minutes(when: float | None) -> float:
    assert when is not None
    return (when - NOON) / MINUTE


def test_a_run_that_keeps_failing_is_tried_after_1_2_4_minutes_not_at_every_look(
    tmp_path: Path, virtuous: Virtuous
) -> None:
    recipe, clock = scheduled(tmp_path), [0.0]
    worker = Worker(recipe, beside(recipe), clock)
    # 40 looks in 20 minutes: there were 40 tries.
    assert attempts([worker], every(30, 0, 20)) == [0, 1, 3, 7, 15]
    assert len(virtuous.requests()) == 5  # one refused request a try
    assert all("Virtuous refused the API key (401)" in (r.error or "") for r in worker.ran)
    told = [(r.failures, minutes(r.retry_at)) for r in worker.ran]
    assert told == [(1, 1), (2, 3), (3, 7), (4, 15), (5, 31)]


def test_the_wait_is_an_hour_at_most(tmp_path: Path, virtuous: Virtuous) -> None:
    recipe, clock = scheduled(tmp_path, "0 12 * * *"), [0.0]  # daily
    worker = Worker(recipe, beside(recipe), clock)
    assert attempts([worker], every(60, 0, 64)) == [0, 1, 3, 7, 15, 31, 63]
    assert [minutes(r.retry_at) for r in worker.ran[-2:]] == [63, 123]  # not 127
    assert attempts([worker], [122, 123, 182, 183]) == [123, 183]


def test_the_next_firing_is_tried_at_once_and_starts_the_count_afresh(
    tmp_path: Path, virtuous: Virtuous
) -> None:
    recipe, clock = scheduled(tmp_path), [0.0]
    worker = Worker(recipe, beside(recipe), clock)
    # The 6th try's wait (32 minutes) ends at 13:00's firing, a new run: its first wait is 1.
    assert attempts([worker], every(60, 0, 65)) == [0, 1, 3, 7, 15, 31, 60, 61, 63]
    assert minutes(worker.ran[5].retry_at) == 60
    assert [r.failures for r in worker.ran] == [1, 2, 3, 4, 5, 6, 1, 2, 3]


def test_workers_sharing_the_state_share_the_wait(
    tmp_path: Path, virtuous: Virtuous, state_location: str
) -> None:
    recipe, clock = scheduled(tmp_path), [0.0]
    workers = [Worker(recipe, state_location, clock) for _ in range(2)]
    # They take turns, a look every 20 seconds: one looks at 12:00, the other at 12:01, 12:03...
    assert attempts(workers, every(20, 0, 20)) == [0, 1, 3, 7, 15]
    assert len(virtuous.requests()) == 5
    assert [r.failures for r in workers[0].ran] == [1]
    assert [r.failures for r in workers[1].ran] == [2, 3, 4, 5]  # counted after the other's


def test_a_run_that_succeeds_ends_the_wait_and_the_count(
    tmp_path: Path, virtuous: Virtuous, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe, clock = scheduled(tmp_path), [0.0]
    worker = Worker(recipe, beside(recipe), clock)
    assert attempts([worker], every(30, 0, 2)) == [0, 1]
    monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
    worker.restart()  # the key fixed: the run is still tried when its wait ends, no sooner
    assert attempts([worker], every(30, 2, 60)) == [3]
    assert worker.ran[-1].report is not None
    assert worker.ran[-1].report.counts[Outcome.WRITTEN] == 3
    assert len(gift_ids(virtuous)) == 3
    # 13:00's run fails (its input is gone): its first failure, not the 3rd, a minute's wait.
    (recipe.parent / "donations-0.csv").unlink()
    assert attempts([worker], every(30, 60, 62)) == [60, 61]
    assert [r.failures for r in worker.ran[-2:]] == [1, 2]
    assert "donations-0.csv" in (worker.ran[-1].error or "")


def test_worker_processes_say_the_failure_once_and_when_the_next_try_is(
    tmp_path: Path, virtuous: Virtuous
) -> None:
    # Due since 1 January, next due next year: the next try is the only one for a minute.
    folder = scheduled_gifts(tmp_path / "recipes", recipes=1, gifts=3, batch=10, schedule=YEARLY)
    env = worker_env(virtuous, VIRTUOUS_API_KEY="refused-key")
    due = time.strftime("%Y-01-01T00:00:00Z", time.gmtime())
    first = start_worker(folder, env, "--poll", "0.1")
    told = stderr_until(first, "next try at ")
    time.sleep(1)  # ten more looks
    first.send_signal(signal.SIGTERM)
    told += first.communicate(timeout=60)[1]
    assert told.count(" stopped: ") == 1, told
    assert f"(due {due}) stopped: Virtuous refused the API key (401)" in told
    assert "; failed once, next try at " in told
    assert len(virtuous.requests()) == 1
    # Another worker, started before the next try, waits for it too, and says so.
    second = start_worker(folder, env, "--poll", "0.1")
    told = stderr_until(second, "next try at ")
    time.sleep(1)
    second.send_signal(signal.SIGTERM)
    told += second.communicate(timeout=60)[1]
    assert f"gifts-0 (due {due}) failed once, next try at " in told
    assert " stopped: " not in told
    assert len(virtuous.requests()) == 1
