"""Persisted OAuth tokens, and the SQLite plumbing shared with the rate budget.

Tokens are secrets that must survive a restart (servers rotate refresh tokens, and logging in again
may need a two-factor code), so they are stored, in a file only its owner can read, and never
logged. :class:`SqliteTokenStore` uses the ``http_tokens`` table, so the file can be the recipe's
state database; :class:`MemoryTokenStore` lives and dies with the process.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from core.state.lock import busy_timeout, database_locked, is_busy, private_file


class TokenStore(Protocol):
    """Persisted OAuth tokens, keyed by a caller-chosen key (one per account)."""

    def load(self, key: str) -> dict[str, Any] | None:
        """The tokens saved under ``key``, or ``None``."""
        ...

    def save(self, key: str, tokens: dict[str, Any]) -> None:
        """Replace the tokens saved under ``key``."""
        ...


# --- SQL, whatever the engine ----------------------------------------------------------------


class Cursor(Protocol):
    """What the HTTP stores read of a DB-API cursor (sqlite3's, psycopg's)."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class Connection(Protocol):
    """A connection inside a transaction, as the HTTP stores use it (sqlite3's, psycopg's)."""

    def execute(self, statement: str, params: Any, /) -> Cursor: ...


class Transactions(Protocol):
    """Hands out transactions on one database: :class:`Sqlite` here, and
    :class:`core.state.pg_connect.Connections` for Postgres."""

    def transaction(self) -> AbstractContextManager[Connection]: ...


# --- SQLite plumbing --------------------------------------------------------------------------


class Sqlite:
    """Connections to one SQLite file (or one private in-memory database).

    A file gets a fresh connection per operation: connections are not safe to share across threads
    or a fork, and opening one is cheap next to an HTTP round trip. ``:memory:`` must keep its one
    connection (each connection would see a different database), guarded by a lock.
    """

    def __init__(self, path: str | os.PathLike[str], schema: str) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        self._memory: sqlite3.Connection | None = None
        self._timeout = busy_timeout()
        if self._path == ":memory:":
            self._memory = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False
            )
        else:
            # The file holds OAuth tokens and donors' data: readable by its owner only.
            private_file(Path(self._path))
        with self._connection() as db, self._stops_when_busy():
            if self._memory is None:
                # WAL (persistent in the file) lets readers of the state database carry on while
                # a process takes a slot from the budget.
                db.execute("PRAGMA journal_mode = WAL")
            db.executescript(schema)  # commits on its own: kept out of transaction()

    @contextmanager
    def _stops_when_busy(self) -> Iterator[None]:
        """Turn "database is locked", once the busy timeout has passed, into a clear stop."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if is_busy(error):
                raise database_locked(self._path, self._timeout) from None
            raise

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._memory is not None:
            with self._lock:
                yield self._memory
            return
        db = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
        try:
            # Losing the last few budget slots in a power cut is harmless; an fsync per request
            # (the FULL default) costs more than the request bookkeeping itself.
            db.execute("PRAGMA synchronous = NORMAL")
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction, committed on success, rolled back on error.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes cannot both read the
        same budget and both decide there is room.
        """
        with self._connection() as db:
            with self._stops_when_busy():
                db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


# --- tokens -----------------------------------------------------------------------------------

_TOKEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_tokens (
    key TEXT PRIMARY KEY,
    tokens TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class SqlTokenStore:
    """A :class:`TokenStore` in the ``http_tokens`` table of a SQL database; its statements are
    written with ``?`` for parameters, and ``mark`` is the engine's own placeholder."""

    mark: ClassVar[str] = "?"

    def __init__(self, db: Transactions) -> None:
        self._db = db

    def load(self, key: str) -> dict[str, Any] | None:
        with self._db.transaction() as db:
            row = self._run(db, "SELECT tokens FROM http_tokens WHERE key = ?", key).fetchone()
        if row is None:
            return None
        tokens = json.loads(row[0])
        return tokens if isinstance(tokens, dict) else None

    def save(self, key: str, tokens: dict[str, Any]) -> None:
        with self._db.transaction() as db:
            self._run(
                db,
                "INSERT INTO http_tokens (key, tokens, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE"
                " SET tokens = excluded.tokens, updated_at = excluded.updated_at",
                key,
                json.dumps(tokens),
                time.time(),
            )

    def _run(self, db: Connection, statement: str, *params: object) -> Cursor:
        return db.execute(statement.replace("?", self.mark), params)


class SqliteTokenStore(SqlTokenStore):
    """A :class:`TokenStore` in the ``http_tokens`` table of a SQLite file.

    The file is usually the recipe's state database, which is its owner's only from its creation
    (:func:`core.state.lock.private_file`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(Sqlite(path, _TOKEN_SCHEMA))


class MemoryTokenStore:
    """A :class:`TokenStore` private to this process."""

    def __init__(self) -> None:
        self._tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            tokens = self._tokens.get(key)
            return dict(tokens) if tokens is not None else None

    def save(self, key: str, tokens: dict[str, Any]) -> None:
        with self._lock:
            self._tokens[key] = dict(tokens)


# --- choosing a store -------------------------------------------------------------------------


class Located(Protocol):
    """Anything that says where it lives, like a recipe's state store (``state.location``)."""

    location: str


def sqlite_file(location: str) -> str | None:
    """The SQLite file behind a state location, or ``None`` when it is not a local file."""
    location = location.removeprefix("sqlite:///")
    if not location or location == ":memory:" or "://" in location:
        return None
    return str(Path(location).resolve())


@functools.cache
def _file_token_store(path: str) -> TokenStore:
    return SqliteTokenStore(path)


@functools.cache
def _process_token_store() -> TokenStore:
    return MemoryTokenStore()


@runtime_checkable
class HoldsTokens(Protocol):
    """A state store that keeps OAuth tokens itself (Postgres: every machine shares them)."""

    def token_store(self) -> TokenStore: ...


def token_store_for(state: Located) -> TokenStore:
    """The token store that goes with a state store: the one it holds (Postgres), its SQLite
    file, else process memory."""
    if isinstance(state, HoldsTokens):
        return state.token_store()
    path = sqlite_file(state.location)
    return _file_token_store(path) if path else _process_token_store()
