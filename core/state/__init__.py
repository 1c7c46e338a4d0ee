"""Where a recipe's progress lives: cursors, the ledger of written records, dead letters.

``open_state(location)`` picks the backend from the location: a path (SQLite, the default), a
``sqlite:///path`` URL, or a ``postgresql://`` URL (many machines sharing one database). The
protocol is small so other engines can implement it.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import FatalError, RecipeError
from core.state.base import (
    Batch,
    DeadLetter,
    InboxEvent,
    InboxStore,
    InFlight,
    NewEvent,
    PairView,
    StateStore,
)
from core.state.pg_connect import is_postgres
from core.state.sqlite import SqliteStateStore

__all__ = [
    "Batch",
    "DeadLetter",
    "InFlight",
    "InboxEvent",
    "InboxStore",
    "NewEvent",
    "PairView",
    "SqliteStateStore",
    "StateStore",
    "inbox_of",
    "open_state",
]


def open_state(location: str | Path) -> StateStore:
    """Open the state store at ``location`` (a file path, ``sqlite:///`` or ``postgresql://``)."""
    text = str(location)
    if is_postgres(text):
        from core.state.postgres import PostgresStateStore  # psycopg only when it is used

        return PostgresStateStore(text)
    if text.startswith("sqlite:///"):
        text = text.removeprefix("sqlite:///")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        msg = (
            f"unsupported state store {scheme!r} (from --state or CONNECTOR_STATE_URL);"
            " supported: a file path, sqlite:///PATH, postgresql://HOST:PORT/DATABASE?user=USER"
        )
        raise RecipeError(msg)
    return SqliteStateStore(Path(text))


def inbox_of(store: StateStore) -> InboxStore:
    """``store``'s webhook inbox; a backend without one cannot serve webhooks."""
    if not isinstance(store, InboxStore):
        msg = f"the state store {store.location} keeps no webhook inbox; use SQLite or Postgres"
        raise FatalError(msg)
    return store
