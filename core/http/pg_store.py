"""Rate budgets and OAuth tokens in a PostgreSQL state database, shared by every machine.

The same statements as the SQLite budget and tokens (:class:`~core.http.budget.SqlBudgetStore`,
:class:`~core.http.store.SqlTokenStore`), in Postgres's placeholders: a sliding-window log per
budget key, capped further by what the server reported. A claim locks the budget's row for its
transaction (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` takes the row lock and reads it in
one round trip), so two machines can never both see room for the last request of a window.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from core.http.budget import BudgetStore, SqlBudgetStore
from core.http.store import SqlTokenStore, TokenStore
from core.state.pg_connect import shared

_LOCKED_REPORT = """
INSERT INTO http_budget (key) VALUES (?) ON CONFLICT (key) DO UPDATE SET key = excluded.key
RETURNING blocked_until, server_remaining, server_reset, server_limit, server_window
"""


class PostgresBudgetStore(SqlBudgetStore):
    """A :class:`~core.http.budget.BudgetStore` in the ``http_budget`` tables of a Postgres
    state database (made by :mod:`core.state.pg_schema`)."""

    mark: ClassVar[str] = "%s"
    row_id: ClassVar[str] = "id"
    greatest: ClassVar[str] = "GREATEST"
    locked_report: ClassVar[str] = _LOCKED_REPORT

    def __init__(self, url: str) -> None:
        super().__init__(shared(url))


class PostgresTokenStore(SqlTokenStore):
    """A :class:`~core.http.store.TokenStore` in the ``http_tokens`` table of a Postgres state
    database: a rotated refresh token saved by one machine is the one every machine uses next."""

    mark: ClassVar[str] = "%s"

    def __init__(self, url: str) -> None:
        super().__init__(shared(url))


@functools.cache
def budget_store(url: str) -> BudgetStore:
    """The budgets in the database at ``url``, one store per process."""
    return PostgresBudgetStore(url)


@functools.cache
def token_store(url: str) -> TokenStore:
    """The tokens in the database at ``url``, one store per process."""
    return PostgresTokenStore(url)
