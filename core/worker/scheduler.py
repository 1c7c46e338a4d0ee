"""Runs scheduled recipes when they are due, once across every worker sharing their state.

Each due recipe is run under its lock (a lease in a Postgres state database, so one process on
any machine): a worker that finds it held moves on, the holder is running it. Under the lock the
worker looks again whether the run is still due, for another worker may have finished it since
the first look; so each scheduled run happens once. A worker killed mid-run loses its lease when
the lease expires (``CONNECTOR_LEASE_SECONDS``); the next worker to look finds the run still due
and runs it, from the cursor, ledger and in-flight marks the killed one committed, so nothing is
lost or sent twice.

A run that stops on an error is recorded as failed under the same lock, and every worker leaves
it until its next try (:func:`core.worker.schedule.record_failed`): 1, 2, 4 ... minutes later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pluggy

from core.errors import ConnectorError, RunInProgressError
from core.http.redact import redact_text
from core.recipe import Recipe
from core.report import RunReport
from core.runner import Runner
from core.state import StateStore, open_state
from core.state.lock import run_lock
from core.worker.schedule import (
    Failures,
    failures,
    latest_due,
    next_due,
    record_failed,
    record_finished,
    waits,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ran:
    """One scheduled run: its report, or the error that stopped it and when it is tried again
    (``retry_at``, its ``failures``-th in a row)."""

    recipe: str
    due: float
    report: RunReport | None = None
    error: str | None = None
    failures: int = 0
    retry_at: float | None = None


class Scheduler:
    """Runs ``recipes`` (each with a ``schedule:``) whose state lives at ``location(recipe)``."""

    def __init__(
        self,
        recipes: list[Recipe],
        location: Callable[[Recipe], str | Path],
        *,
        pm: pluggy.PluginManager | None = None,
        on_run: Callable[[Ran], None] = lambda ran: None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.recipes = recipes
        self.location = location
        self.pm = pm
        self.on_run = on_run
        self.clock = clock or time.time

    def run_due(self, now: float) -> list[Ran]:
        """Run every recipe due at ``now`` that no other worker has run or is running."""
        done = []
        for recipe in self.recipes:
            ran = self._run_if_due(recipe, now)
            if ran is not None:
                self.on_run(ran)
                done.append(ran)
        return done

    def run_forever(self, stop: threading.Event, poll: float) -> None:
        """Run what is due until ``stop`` is set, looking at least every ``poll`` seconds (a
        killed worker's run is taken over at the first look after its lease expired)."""
        while not stop.is_set():
            self.run_due(self.clock())
            now = self.clock()
            soonest = min(next_due(_schedule(r), now) for r in self.recipes)
            stop.wait(max(0.0, min(poll, soonest - now)))

    def retrying(self, now: float) -> dict[str, Failures]:
        """The recipes whose run due at ``now`` failed and waits for its next try."""
        waiting = {}
        for recipe in self.recipes:
            store = open_state(self.location(recipe))
            try:
                failed = failures(store, recipe.name, latest_due(_schedule(recipe), now))
            finally:
                store.close()
            if failed is not None and failed.retry_at > now:
                waiting[recipe.name] = failed
        return waiting

    def _run_if_due(self, recipe: Recipe, now: float) -> Ran | None:
        due = latest_due(_schedule(recipe), now)
        store = open_state(self.location(recipe))
        try:
            if waits(store, recipe.name, due, now):
                return None
            with run_lock(recipe.path, recipe.name), store.lock(recipe.name):
                # Another worker may have finished it, or failed at it, since the first look.
                if waits(store, recipe.name, due, self.clock()):
                    return None
                return self._run(recipe, store, due)
        except RunInProgressError:
            return None  # another worker runs it; if it dies, its lease expires
        except Exception as error:  # the state or its lock, before any run: nothing to record
            return Ran(recipe.name, due, error=_reason(recipe.name, error))
        finally:
            store.close()

    def _run(self, recipe: Recipe, store: StateStore, due: float) -> Ran:
        """Run ``recipe`` for ``due``, its lock held; a failure is recorded with its next try."""
        try:
            report = Runner(recipe, store, pm=self.pm, locked=True).run()
        except Exception as error:  # a bug in one recipe's plugins must not stop the others
            reason = _reason(recipe.name, error)
        else:
            record_finished(store, recipe.name, due, self.clock())
            return Ran(recipe.name, due, report=report)
        failed = record_failed(store, recipe.name, _schedule(recipe), due, self.clock())
        return Ran(recipe.name, due, error=reason, failures=failed.count, retry_at=failed.retry_at)


def _reason(recipe: str, error: Exception) -> str:
    """Why a run stopped, in words safe for a log (no secret)."""
    if isinstance(error, ConnectorError):
        return redact_text(str(error))
    logger.debug("%s: the traceback", recipe, exc_info=True)  # shown with -vv
    return f"unexpected {type(error).__name__}: {redact_text(str(error))}"


def _schedule(recipe: Recipe) -> str:
    assert recipe.model.schedule is not None
    return recipe.model.schedule
