"""Rate budgets and OAuth tokens in a PostgreSQL state database, shared by every machine.

The same arithmetic as the SQLite budget (:mod:`core.http.budget`): a sliding-window log per
budget key, capped further by what the server reported. A claim locks the budget's row for its
transaction (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` takes the row lock and reads it in
one round trip), so two machines can never both see room for the last request of a window.
"""

from __future__ import annotations

import functools
import json
import time
from typing import TYPE_CHECKING, Any

from core.http.budget import BudgetStore, ServerReport, Usage
from core.http.store import TokenStore
from core.state.pg_connect import shared

if TYPE_CHECKING:
    import psycopg

_LOCKED_REPORT = """
INSERT INTO http_budget (key) VALUES (%s) ON CONFLICT (key) DO UPDATE SET key = excluded.key
RETURNING blocked_until, server_remaining, server_reset, server_limit, server_window
"""
_REPORT = """
SELECT blocked_until, server_remaining, server_reset, server_limit, server_window
FROM http_budget WHERE key = %s
"""


def _count(db: psycopg.Connection[Any], key: str, window: float, now: float) -> int:
    row = db.execute(
        "SELECT count(*) FROM http_budget_log WHERE key = %s AND at > %s", (key, now - window)
    ).fetchone()
    return int(row[0]) if row else 0


def _room(db: psycopg.Connection[Any], key: str, limit: int, window: float, now: float) -> float:
    """0 when one more request fits ``limit`` per ``window``, else the seconds until one does."""
    count = _count(db, key, window, now)
    if count < limit:
        return 0.0
    row = db.execute(  # the request that must leave the window before one more fits in it
        "SELECT at FROM http_budget_log WHERE key = %s AND at > %s ORDER BY at LIMIT 1 OFFSET %s",
        (key, now - window, count - limit),
    ).fetchone()
    assert row is not None
    return max(float(row[0]) + window - now, 1e-3)


class PostgresBudgetStore:
    """A :class:`~core.http.budget.BudgetStore` in the ``http_budget`` tables of a Postgres
    state database (made by :mod:`core.state.pg_schema`)."""

    def __init__(self, url: str) -> None:
        self._db = shared(url)

    def take(self, key: str, limit: int, window: float, now: float) -> float:
        with self._db.transaction() as db:
            server = ServerReport(*(db.execute(_LOCKED_REPORT, (key,)).fetchone() or ()))
            if (wait := server.wait(now)) > 0:
                return wait
            db.execute(
                "DELETE FROM http_budget_log WHERE key = %s AND at <= %s", (key, now - window)
            )
            wait = max(_room(db, key, n, per, now) for n, per in server.budgets(limit, window))
            if wait > 0:
                return wait
            db.execute("INSERT INTO http_budget_log (key, at) VALUES (%s, %s)", (key, now))
            if server.capped(now):
                db.execute(
                    "UPDATE http_budget SET server_remaining = server_remaining - 1 WHERE key = %s",
                    (key,),
                )
            return 0.0

    def settle(self, key: str, claimed_at: float, now: float) -> None:
        if now <= claimed_at:
            return
        with self._db.transaction() as db:
            db.execute(
                "UPDATE http_budget_log SET at = %s WHERE id = (SELECT id FROM http_budget_log"
                " WHERE key = %s AND at = %s LIMIT 1)",
                (now, key, claimed_at),
            )

    def block_until(self, key: str, until: float) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO http_budget (key, blocked_until) VALUES (%s, %s) ON CONFLICT (key)"
                " DO UPDATE SET blocked_until = GREATEST(http_budget.blocked_until,"
                " excluded.blocked_until)",
                (key, until),
            )

    def observe(
        self, key: str, remaining: int, reset_at: float, limit: int | None, now: float
    ) -> None:
        if reset_at <= now:
            return  # a report about a window that is already over
        with self._db.transaction() as db:
            old = ServerReport(*(db.execute(_LOCKED_REPORT, (key,)).fetchone() or ()))
            new = old.merged(remaining, reset_at, limit, now)
            db.execute(
                "UPDATE http_budget SET server_remaining = %s, server_reset = %s,"
                " server_limit = %s, server_window = %s WHERE key = %s",
                (new.remaining, new.reset, new.limit, new.window, key),
            )

    def usage(self, key: str, limit: int, window: float, now: float) -> Usage:
        with self._db.transaction() as db:
            server = ServerReport(*(db.execute(_REPORT, (key,)).fetchone() or ()))
            spent = [(_count(db, key, per, now), n) for n, per in server.budgets(limit, window)]
        return server.usage(spent, limit, now)

    def reported(self, now: float) -> dict[str, int]:
        """The requests each budget has left by the server's last word, where that still
        applies (``connector serve``'s metrics)."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT key, server_remaining FROM http_budget"
                " WHERE server_remaining IS NOT NULL AND server_reset > %s",
                (now,),
            ).fetchall()
        return {str(key): max(0, int(remaining)) for key, remaining in rows}


class PostgresTokenStore:
    """A :class:`~core.http.store.TokenStore` in the ``http_tokens`` table of a Postgres state
    database: a rotated refresh token saved by one machine is the one every machine uses next."""

    def __init__(self, url: str) -> None:
        self._db = shared(url)

    def load(self, key: str) -> dict[str, Any] | None:
        with self._db.transaction() as db:
            row = db.execute("SELECT tokens FROM http_tokens WHERE key = %s", (key,)).fetchone()
        if row is None:
            return None
        tokens = json.loads(row[0])
        return tokens if isinstance(tokens, dict) else None

    def save(self, key: str, tokens: dict[str, Any]) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO http_tokens (key, tokens, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (key) DO UPDATE"
                " SET tokens = excluded.tokens, updated_at = excluded.updated_at",
                (key, json.dumps(tokens), time.time()),
            )


@functools.cache
def budget_store(url: str) -> BudgetStore:
    """The budgets in the database at ``url``, one store per process."""
    return PostgresBudgetStore(url)


@functools.cache
def token_store(url: str) -> TokenStore:
    """The tokens in the database at ``url``, one store per process."""
    return PostgresTokenStore(url)
