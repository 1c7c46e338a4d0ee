"""Rate budgets shared between clients and processes: the governor's memory.

The budget is a *sliding-window log*: a request is granted only if fewer than ``limit`` were granted
in the last ``window`` seconds (each counted from when its answer came, once it has). Unlike a
token bucket (which lets up to twice the limit through in one window: a full bucket plus its
refill), this never sends more than the limit in any window, whatever window the server counts in.

On top of that ceiling of our own, the server's report caps it further: the requests remaining
until its reset time, "retry after", and its own limit. The server's limit belongs to the server's
window, which its reset times tell (the longest time to a reset it ever reported, a fixed window
being reported whole by the first request in it): a server allowing 6 requests per 2 seconds is
paced at 6 per 2 seconds, not 6 per our configured hour. That window is never taken longer than
ours, so a daily quota is not spread over our hour: its remaining count still applies.

* :class:`SqliteBudgetStore` shares one file between every process on a host. Its tables are
  prefixed ``http_``, so the file can be the recipe's state database (``.connector/state.db``).
* :class:`MemoryBudgetStore` lives and dies with the process.
* :class:`~core.http.redis_store.RedisBudgetStore` (``CONNECTOR_RATE_URL=redis://...``) is
  shared by every machine using that Redis, whatever state store each recipe has.

:class:`BudgetStore` is small on purpose, so other engines implement it: a Postgres state store
holds its budgets in its database (:mod:`core.http.pg_store`), shared by every machine using it.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

from core.http.store import Connection, Cursor, Located, Sqlite, Transactions, sqlite_file


class Usage(NamedTuple):
    """How much of a budget is spent, for progress messages."""

    used: int
    limit: int
    blocked_until: float


class BudgetStore(Protocol):
    """Shared state of rate budgets, keyed by budget key. All times are Unix epoch seconds."""

    def take(self, key: str, limit: int, window: float, now: float) -> float:
        """Claim one request: 0 when granted, else the seconds to wait before asking again."""
        ...

    def settle(self, key: str, claimed_at: float, now: float) -> None:
        """The request claimed at ``claimed_at`` is done: count it from ``now`` instead. A server
        counts a request when it arrives, which may be well after the claim (a slow network, a
        busy host); counting it from its answer keeps it inside the server's window."""
        ...

    def block_until(self, key: str, until: float) -> None:
        """Refuse every request on ``key`` until ``until`` (the server said "retry after")."""
        ...

    def observe(
        self, key: str, remaining: int, reset_at: float, limit: int | None, now: float
    ) -> None:
        """Record the server's view: ``remaining`` requests are left until ``reset_at``."""
        ...

    def usage(self, key: str, limit: int, window: float, now: float) -> Usage:
        """How many requests count against ``key`` now, out of how many."""
        ...


# --- SQLite ------------------------------------------------------------------------------------

_BUDGET_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_budget (
    key TEXT PRIMARY KEY,
    blocked_until REAL NOT NULL DEFAULT 0,
    server_remaining INTEGER,
    server_reset REAL,
    server_limit INTEGER,
    server_window REAL
);
CREATE TABLE IF NOT EXISTS http_budget_log (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS http_budget_log_key_at ON http_budget_log (key, at);
"""

# Columns added since the first release, created in an existing state file on opening.
_BUDGET_COLUMNS = {"server_window": "REAL"}

_REPORT = """
SELECT blocked_until, server_remaining, server_reset, server_limit, server_window
FROM http_budget WHERE key = ?
"""

# A reset this close to the one already recorded is the same server window (clocks and rounding
# differ by a second or so between responses).
_SAME_WINDOW = 1.0


class ServerReport(NamedTuple):
    """What the server last said about a budget (one ``http_budget`` row)."""

    blocked_until: float = 0.0
    remaining: int | None = None
    reset: float | None = None
    limit: int | None = None
    window: float | None = None

    def capped(self, now: float) -> bool:
        """Whether a server-reported "remaining until reset" still applies."""
        return self.remaining is not None and self.reset is not None and self.reset > now

    def wait(self, now: float) -> float:
        """Seconds the server told us to hold off, from ``now``."""
        if self.blocked_until > now:
            return self.blocked_until - now
        if self.capped(now) and self.remaining is not None and self.reset is not None:
            return self.reset - now if self.remaining < 1 else 0.0
        return 0.0

    def budgets(self, limit: int, window: float) -> list[tuple[int, float]]:
        """Every (requests, per seconds) that applies: ours, and the server's in its own window
        (never longer than ours) once it has reported both."""
        ours = [(limit, window)]
        if self.limit is None or not self.window:
            return ours
        return [*ours, (self.limit, min(self.window, window))]

    def merged(
        self, remaining: int, reset_at: float, limit: int | None, now: float
    ) -> ServerReport:
        """This report updated by a new response's ``remaining`` until ``reset_at``."""
        # The server's window is at least as long as the longest time to a reset it reported.
        window = max(reset_at - now, self.window or 0.0)
        if (
            self.capped(now)
            and self.remaining is not None
            and self.reset is not None
            and (reset_at <= self.reset + _SAME_WINDOW)
        ):
            # Same window: the lower count wins. The server has not yet counted our requests
            # in flight; we have not counted other integrations' requests.
            remaining = min(remaining, self.remaining)
            reset_at = max(reset_at, self.reset)
        chosen = limit if limit is not None else self.limit
        return ServerReport(self.blocked_until, remaining, reset_at, chosen, window)

    def usage(self, spent: list[tuple[int, int]], limit: int, now: float) -> Usage:
        """The budget with the least room left, from ``spent`` (used, of) of each of
        :meth:`budgets` and the server's own count."""
        if self.capped(now) and self.remaining is not None:
            # The server's count of its window, which includes other integrations' requests.
            reported = self.limit if self.limit is not None else limit
            spent = [*spent, (reported - self.remaining, reported)]
        used, most = min(spent, key=lambda pair: (pair[1] - pair[0], pair[1]))
        return Usage(used=used, limit=most, blocked_until=self.blocked_until)


def _add_columns(db: sqlite3.Connection) -> None:
    """Bring a state file created by an earlier version up to the current budget table."""
    have = {row[1] for row in db.execute("PRAGMA table_info(http_budget)")}
    for name, kind in _BUDGET_COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE http_budget ADD COLUMN {name} {kind}")


class SqlBudgetStore:
    """A :class:`BudgetStore` in the ``http_budget`` tables of a SQL database, whatever the
    engine: the statements are written once, with ``?`` for parameters, and a subclass says
    how its engine differs (its placeholder, the log's row id, its two-argument maximum, how a
    budget's row is read and locked for the rest of a claim)."""

    mark: ClassVar[str] = "?"
    row_id: ClassVar[str] = "rowid"
    greatest: ClassVar[str] = "MAX"
    #: Reads a budget's row for a claim; SQLite's ``BEGIN IMMEDIATE`` has locked the whole file.
    locked_report: ClassVar[str] = _REPORT

    def __init__(self, db: Transactions) -> None:
        self._db = db

    def take(self, key: str, limit: int, window: float, now: float) -> float:
        with self._db.transaction() as db:
            server = self._report(db, self.locked_report, key)
            if (wait := server.wait(now)) > 0:
                return wait
            # The server's window is never longer than ours: nothing older than ours counts.
            old = now - window
            self._run(db, "DELETE FROM http_budget_log WHERE key = ? AND at <= ?", key, old)
            wait = max(self._room(db, key, n, per, now) for n, per in server.budgets(limit, window))
            if wait > 0:
                return wait
            self._run(db, "INSERT INTO http_budget_log (key, at) VALUES (?, ?)", key, now)
            if server.capped(now):
                self._run(
                    db,
                    "UPDATE http_budget SET server_remaining = server_remaining - 1 WHERE key = ?",
                    key,
                )
            return 0.0

    def settle(self, key: str, claimed_at: float, now: float) -> None:
        if now <= claimed_at:
            return
        row = self.row_id
        with self._db.transaction() as db:
            self._run(
                db,
                f"UPDATE http_budget_log SET at = ? WHERE {row} = (SELECT {row} FROM"
                " http_budget_log WHERE key = ? AND at = ? LIMIT 1)",
                now,
                key,
                claimed_at,
            )

    def block_until(self, key: str, until: float) -> None:
        with self._db.transaction() as db:
            self._run(
                db,
                "INSERT INTO http_budget (key, blocked_until) VALUES (?, ?) ON CONFLICT (key)"
                f" DO UPDATE SET blocked_until = {self.greatest}(http_budget.blocked_until,"
                " excluded.blocked_until)",
                key,
                until,
            )

    def observe(
        self, key: str, remaining: int, reset_at: float, limit: int | None, now: float
    ) -> None:
        if reset_at <= now:
            return  # a report about a window that is already over
        with self._db.transaction() as db:
            old = self._report(db, self.locked_report, key)
            new = old.merged(remaining, reset_at, limit, now)
            self._run(
                db,
                "INSERT INTO http_budget"
                " (key, server_remaining, server_reset, server_limit, server_window)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " server_remaining = excluded.server_remaining,"
                " server_reset = excluded.server_reset, server_limit = excluded.server_limit,"
                " server_window = excluded.server_window",
                key,
                new.remaining,
                new.reset,
                new.limit,
                new.window,
            )

    def usage(self, key: str, limit: int, window: float, now: float) -> Usage:
        with self._db.transaction() as db:
            server = self._report(db, _REPORT, key)
            budgets = server.budgets(limit, window)
            spent = [(self._count(db, key, per, now), n) for n, per in budgets]
        return server.usage(spent, limit, now)

    def reported(self, now: float) -> dict[str, int]:
        """The requests each budget has left by the server's last word, where that still
        applies (``connector serve``'s metrics)."""
        with self._db.transaction() as db:
            rows = self._run(
                db,
                "SELECT key, server_remaining FROM http_budget"
                " WHERE server_remaining IS NOT NULL AND server_reset > ?",
                now,
            ).fetchall()
        return {str(key): max(0, int(remaining)) for key, remaining in rows}

    def _run(self, db: Connection, statement: str, *params: object) -> Cursor:
        return db.execute(statement.replace("?", self.mark), params)

    def _report(self, db: Connection, statement: str, key: str) -> ServerReport:
        row = self._run(db, statement, key).fetchone()
        return ServerReport(*row) if row else ServerReport()

    def _count(self, db: Connection, key: str, window: float, now: float) -> int:
        """Requests on ``key`` counted in the ``window`` seconds up to ``now``."""
        statement = "SELECT COUNT(*) FROM http_budget_log WHERE key = ? AND at > ?"
        (count,) = self._run(db, statement, key, now - window).fetchone()
        return int(count)

    def _room(self, db: Connection, key: str, limit: int, window: float, now: float) -> float:
        """0 when one more request fits ``limit`` per ``window``, else the seconds until one
        does."""
        count = self._count(db, key, window, now)
        if count < limit:
            return 0.0
        # The request that must leave the window before one more fits in it.
        (oldest,) = self._run(
            db,
            "SELECT at FROM http_budget_log WHERE key = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?",
            key,
            now - window,
            count - limit,
        ).fetchone()
        return max(float(oldest) + window - now, 1e-3)


class _SqliteBudget(SqlBudgetStore):
    """The budget tables in a SQLite file or a private in-memory database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        sqlite = Sqlite(path, _BUDGET_SCHEMA)
        with sqlite.transaction() as db:
            _add_columns(db)
        super().__init__(sqlite)


class SqliteBudgetStore(_SqliteBudget):
    """A :class:`BudgetStore` in a SQLite file, shared by every process that opens the same file."""


class MemoryBudgetStore(_SqliteBudget):
    """A :class:`BudgetStore` private to this process (an in-memory SQLite database, so it behaves
    exactly like the shared one)."""

    def __init__(self) -> None:
        super().__init__(":memory:")


# --- choosing a store -------------------------------------------------------------------------


@functools.cache
def process_budget_store() -> BudgetStore:
    """Budgets shared by every client in this process that has no store of its own."""
    return MemoryBudgetStore()


@functools.cache
def _file_budget_store(path: str) -> BudgetStore:
    return SqliteBudgetStore(path)


@runtime_checkable
class HoldsBudgets(Protocol):
    """A state store that keeps the rate budgets itself (Postgres: every machine shares them)."""

    def budget_store(self) -> BudgetStore: ...


def store_for(state: Located) -> BudgetStore:
    """The budget store that goes with a state store: the Redis named by ``CONNECTOR_RATE_URL``
    (every machine using it shares the budgets), else the one the state store holds (Postgres),
    or its SQLite file, so every process on this host running a recipe with the same state file
    shares one budget; else this process's."""
    if rate_url := os.environ.get("CONNECTOR_RATE_URL", "").strip():
        from core.http import redis_store

        return redis_store.budget_store(redis_store.check_rate_url(rate_url))
    if isinstance(state, HoldsBudgets):
        return state.budget_store()
    path = sqlite_file(state.location)
    return _file_budget_store(path) if path else process_budget_store()
