"""When a scheduled recipe is due, and the record of its last finished run.

A recipe's ``schedule:`` is a cron expression, read in UTC so every machine agrees on it
whatever its time zone. A recipe is due at the latest time its schedule fired, until a run for
that time finished: runs missed while no worker was up coalesce into one, as cron's would.

The finished run is recorded in the state store's cache (which every machine sharing the state
shares), written by the run that holds the recipe's lock: so it is never written by two runs at
once, and a run that died before writing it is run again by the next worker to find it due.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.state import StateStore

_NAMESPACE = "connector.worker.finished"
_FOREVER = float("inf")


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
