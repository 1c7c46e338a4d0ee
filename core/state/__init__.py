"""Where a recipe's progress lives: cursors, the ledger of written records, dead letters.

``open_state(location)`` picks the backend from the location: a path (SQLite, the default) or a
``sqlite:///path`` URL. The protocol is small so other engines can implement it.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import RecipeError
from core.state.base import Batch, DeadLetter, InFlight, StateStore
from core.state.sqlite import SqliteStateStore

__all__ = ["Batch", "DeadLetter", "InFlight", "SqliteStateStore", "StateStore", "open_state"]


def open_state(location: str | Path) -> StateStore:
    """Open the state store at ``location`` (a file path or ``sqlite:///`` URL)."""
    text = str(location)
    if text.startswith("sqlite:///"):
        text = text.removeprefix("sqlite:///")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        msg = (
            f"unsupported state store {scheme!r} (from --state or CONNECTOR_STATE_URL);"
            " supported: a file path, sqlite:///PATH"
        )
        raise RecipeError(msg)
    return SqliteStateStore(Path(text))
