"""Rate budgets shared between clients and processes: the governor's memory.

The budget is a *sliding-window log*: a request is granted only if fewer than ``limit`` were granted
in the last ``window`` seconds (each counted from when its answer came, once it has). Unlike a
token bucket (which lets up to twice the limit through in one window: a full bucket plus its
refill), this never sends more than the limit in any window, whatever window the server counts in.
On top of that the server's own report (requests remaining until a reset time, and "retry after")
caps it further.

* :class:`SqliteBudgetStore` shares one file between every process on a host. Its tables are
  prefixed ``http_``, so the file can be the recipe's state database (``.connector/state.db``).
* :class:`MemoryBudgetStore` lives and dies with the process.

:class:`BudgetStore` is small on purpose, so a Redis store (many hosts) can implement it later.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from typing import NamedTuple, Protocol

from core.http.store import Located, Sqlite, sqlite_file


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
    server_limit INTEGER
);
CREATE TABLE IF NOT EXISTS http_budget_log (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS http_budget_log_key_at ON http_budget_log (key, at);
"""

# A reset this close to the one already recorded is the same server window (clocks and rounding
# differ by a second or so between responses).
_SAME_WINDOW = 1.0


class _Server(NamedTuple):
    """What the server last said about a budget (one ``http_budget`` row)."""

    blocked_until: float = 0.0
    remaining: int | None = None
    reset: float | None = None
    limit: int | None = None

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

    def effective_limit(self, limit: int) -> int:
        return min(limit, self.limit) if self.limit is not None else limit


def _server(db: sqlite3.Connection, key: str) -> _Server:
    row = db.execute(
        "SELECT blocked_until, server_remaining, server_reset, server_limit FROM http_budget"
        " WHERE key = ?",
        (key,),
    ).fetchone()
    return _Server(*row) if row else _Server()


class _SqliteBudget:
    """The budget tables and their arithmetic, in a SQLite file or a private in-memory database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = Sqlite(path, _BUDGET_SCHEMA)

    def take(self, key: str, limit: int, window: float, now: float) -> float:
        with self._db.transaction() as db:
            server = _server(db, key)
            if (wait := server.wait(now)) > 0:
                return wait
            limit = server.effective_limit(limit)
            db.execute("DELETE FROM http_budget_log WHERE key = ? AND at <= ?", (key, now - window))
            (count,) = db.execute(
                "SELECT COUNT(*) FROM http_budget_log WHERE key = ?", (key,)
            ).fetchone()
            if count >= limit:
                # The request that must leave the window before one more fits in it.
                (oldest,) = db.execute(
                    "SELECT at FROM http_budget_log WHERE key = ? ORDER BY at LIMIT 1 OFFSET ?",
                    (key, count - limit),
                ).fetchone()
                return max(float(oldest + window - now), 1e-3)
            db.execute("INSERT INTO http_budget_log (key, at) VALUES (?, ?)", (key, now))
            if server.capped(now):
                db.execute(
                    "UPDATE http_budget SET server_remaining = server_remaining - 1 WHERE key = ?",
                    (key,),
                )
            return 0.0

    def settle(self, key: str, claimed_at: float, now: float) -> None:
        if now <= claimed_at:
            return
        with self._db.transaction() as db:
            db.execute(
                "UPDATE http_budget_log SET at = ? WHERE rowid = (SELECT rowid FROM"
                " http_budget_log WHERE key = ? AND at = ? LIMIT 1)",
                (now, key, claimed_at),
            )

    def block_until(self, key: str, until: float) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO http_budget (key, blocked_until) VALUES (?, ?) ON CONFLICT (key)"
                " DO UPDATE SET blocked_until = MAX(blocked_until, excluded.blocked_until)",
                (key, until),
            )

    def observe(
        self, key: str, remaining: int, reset_at: float, limit: int | None, now: float
    ) -> None:
        if reset_at <= now:
            return  # a report about a window that is already over
        with self._db.transaction() as db:
            old = _server(db, key)
            if (
                old.capped(now)
                and old.remaining is not None
                and old.reset is not None
                and (reset_at <= old.reset + _SAME_WINDOW)
            ):
                # Same window: the lower count wins. The server has not yet counted our requests
                # in flight; we have not counted other integrations' requests.
                remaining = min(remaining, old.remaining)
                reset_at = max(reset_at, old.reset)
            db.execute(
                "INSERT INTO http_budget (key, server_remaining, server_reset, server_limit)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " server_remaining = excluded.server_remaining,"
                " server_reset = excluded.server_reset, server_limit = excluded.server_limit",
                (key, remaining, reset_at, limit if limit is not None else old.limit),
            )

    def usage(self, key: str, limit: int, window: float, now: float) -> Usage:
        with self._db.transaction() as db:
            server = _server(db, key)
            (count,) = db.execute(
                "SELECT COUNT(*) FROM http_budget_log WHERE key = ? AND at > ?", (key, now - window)
            ).fetchone()
        limit = server.effective_limit(limit)
        used = int(count)
        if server.capped(now) and server.remaining is not None:
            used = max(used, limit - server.remaining)
        return Usage(used=used, limit=limit, blocked_until=server.blocked_until)


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


def store_for(state: Located) -> BudgetStore:
    """The budget store that goes with a state store: its SQLite file, so every process on this
    host running a recipe with the same state file shares one budget; else this process's."""
    path = sqlite_file(state.location)
    return _file_budget_store(path) if path else process_budget_store()
