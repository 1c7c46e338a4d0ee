"""When a scheduled recipe is due, the record of its last finished run, and of the failed
tries at its run since.

A recipe's ``schedule:`` is a cron expression, read in UTC so every machine agrees on it
whatever its time zone. A recipe is due at the latest time its schedule fired, until a run for
that time finished: runs missed while no worker was up coalesce into one, as cron's would.

The finished run is recorded in the state store's cache (which every machine sharing the state
shares), written by the run that holds the recipe's lock: so it is never written by two runs at
once, and a run that died before writing it is run again by the next worker to find it due.

A run that failed is not tried at every look of every worker (a refused key would spend the
organization's rate budget, and fill the logs, until someone noticed): the failures in a row are
recorded beside it, under the same lock, and the next try waits 1, 2, 4 ... minutes, at most an
hour. The schedule's next firing is a new run, tried at once: the count starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.state import StateStore

_NAMESPACE = "connector.worker.finished"
_FAILED = "connector.worker.failed"
_FOREVER = float("inf")
_FIRST_WAIT = 60.0
_LONGEST_WAIT = 3600.0


def latest_due(schedule: str, now: float) -> float:
    """The latest time, at or before ``now``, that ``schedule`` fired (epoch seconds)."""
    from croniter import croniter

    # Just past now, so a run due exactly now is due now, not at the previous firing.
    start = datetime.fromtimestamp(now + 1e-6, UTC)
    return float(croniter(schedule, start).get_prev(float))


def next_due(schedule: str, now: float) -> float:
    """The first time after ``now`` that ``schedule`` fires (epoch seconds)."""
    from croniter import croniter

    return float(croniter(schedule, datetime.fromtimestamp(now, UTC)).get_next(float))


def finished_due(store: StateStore, recipe: str) -> float | None:
    """The due time of ``recipe``'s last finished scheduled run, if any."""
    record = store.cache_get(_NAMESPACE, recipe, _FOREVER)
    return float(record["due"]) if isinstance(record, dict) and "due" in record else None


def record_finished(store: StateStore, recipe: str, due: float, now: float) -> None:
    """``recipe``'s run for ``due`` finished (written under the recipe's lock)."""
    store.cache_put(_NAMESPACE, recipe, {"due": due, "finished_at": now})


def is_done(store: StateStore, recipe: str, due: float) -> bool:
    finished = finished_due(store, recipe)
    return finished is not None and finished >= due


@dataclass(frozen=True)
class Failures:
    """A recipe's run for ``due`` failed ``count`` times in a row; it is tried again at
    ``retry_at``."""

    due: float
    count: int
    retry_at: float


def failures(store: StateStore, recipe: str, due: float) -> Failures | None:
    """The failed tries at ``recipe``'s run for ``due`` (those of an earlier firing count no
    more: a new firing starts afresh)."""
    record = store.cache_get(_FAILED, recipe, _FOREVER)
    if not isinstance(record, dict) or record.get("due") != due:
        return None
    return Failures(due, int(record["count"]), float(record["retry_at"]))


def waits(store: StateStore, recipe: str, due: float, now: float) -> bool:
    """Whether ``recipe``'s run for ``due`` is not to be tried at ``now``: it finished, or it
    failed and its next try is later."""
    if is_done(store, recipe, due):
        return True
    failed = failures(store, recipe, due)
    return failed is not None and failed.retry_at > now


def record_failed(
    store: StateStore, recipe: str, schedule: str, due: float, now: float
) -> Failures:
    """One more failed try at ``recipe``'s run for ``due`` (written under the recipe's lock):
    the next is 1, 2, 4 ... minutes later, at most an hour, and at the latest at the schedule's
    next firing."""
    before = failures(store, recipe, due)
    count = 1 if before is None else before.count + 1
    wait = min(_FIRST_WAIT * 2 ** min(count - 1, 10), _LONGEST_WAIT)
    retry_at = min(now + wait, next_due(schedule, now))
    store.cache_put(_FAILED, recipe, {"due": due, "count": count, "retry_at": retry_at})
    return Failures(due, count, retry_at)
