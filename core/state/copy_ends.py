"""The two ends of ``connector state copy``: a state database read or written row by row.

Each end speaks its backend's SQL and keeps its backend's storage: the SQLite ledger keeps a
digest as its 32 bytes, the Postgres store escapes NUL in the text it keeps. Rows cross between
ends in one plain form (digests as hex, text as given), so a copy reads back as the original.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import FatalError
from core.state import pg_schema, schema
from core.state.lock import busy_timeout, database_locked, is_busy
from core.state.pg_connect import connect, display, is_postgres, unreachable

if TYPE_CHECKING:
    import psycopg


class SqliteEnd:
    """A SQLite state file, opened beside (never instead of) its store."""

    postgres = False
    #: The schema version this connector keeps such a file at.
    known = schema.VERSION

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        self._path = path
        self._db: sqlite3.Connection | None = None

    def version(self) -> int:
        """The version the file records (0: no file or no tables yet), read without migrating."""
        if not self._path.exists():
            return 0
        db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if "state_schema" not in tables:
                return 0
            return int(db.execute("SELECT max(version) FROM state_schema").fetchone()[0] or 0)
        finally:
            db.close()

    def open(self) -> None:
        self._db = sqlite3.connect(self._path, timeout=busy_timeout(), isolation_level=None)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn().execute(sql, params)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn().executemany(sql, rows)

    def now(self) -> float:
        return time.time()  # the inbox of a file keeps its machine's clock

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """A snapshot to read, or the file's write lock held until the commit."""
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as error:
            if is_busy(error):
                raise database_locked(self.where, busy_timeout()) from None
            raise
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def stored_digest(self, digest: str) -> bytes | str:
        return schema.pack_digest(digest)

    def plain_digest(self, stored: bytes | str) -> str:
        return schema.unpack_digest(stored)

    def stored_text(self, text: str | None) -> str | None:
        return text

    def plain_text(self, stored: str | None) -> str | None:
        return stored

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "opened first"
        return self._db


class PostgresEnd:
    """A Postgres state database (its URL's schema); only :attr:`where`, never the password,
    is ever shown."""

    postgres = True
    known = pg_schema.VERSION

    def __init__(self, url: str) -> None:
        self.where = display(url)
        self._url = url
        self._db: psycopg.Connection[Any] | None = None

    def version(self) -> int:
        db = connect(self._url)
        try:
            return pg_schema.version(db)
        finally:
            db.close()

    def open(self) -> None:
        self._db = connect(self._url)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reported():
            return self._conn().execute(_marks(sql), params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._reported():
            self._conn().execute(_marks(sql), params)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._reported():
            self._conn().cursor().executemany(_marks(sql), rows)

    def now(self) -> float:
        # The inbox of a shared database keeps the database's clock.
        found = self.rows("SELECT extract(epoch FROM now())::float8")
        return float(found[0][0])

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """One transaction; a read sees one snapshot of every table."""
        with self._reported(), self._conn().transaction():
            if not write:
                self._conn().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def stored_digest(self, digest: str) -> bytes | str:
        return digest

    def plain_digest(self, stored: bytes | str) -> str:
        return schema.unpack_digest(stored)

    def stored_text(self, text: str | None) -> str | None:
        return None if text is None else escaped(text)

    def plain_text(self, stored: str | None) -> str | None:
        return None if stored is None else unescaped(stored)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def _conn(self) -> psycopg.Connection[Any]:
        assert self._db is not None, "opened first"
        return self._db

    @contextmanager
    def _reported(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as error:
            raise unreachable(self._url, error) from None


End = SqliteEnd | PostgresEnd


def end_at(location: str | Path) -> End:
    """The end at ``location``: a path, ``sqlite:///PATH`` or a ``postgresql://`` URL."""
    text = str(location)
    if is_postgres(text):
        return PostgresEnd(text)
    if "://" in text and not text.startswith("sqlite:///"):
        msg = f"unsupported state store {text.split('://', 1)[0]!r}"
        raise FatalError(msg)
    return SqliteEnd(Path(text.removeprefix("sqlite:///")))


def _marks(sql: str) -> bytes:
    """SQLite's ``?`` marks as psycopg's ``%s`` (no statement here holds a literal ``?``)."""
    return sql.replace("?", "%s").encode()


def escaped(text: str) -> str:
    from core.state.postgres import _text  # the store's own escaping: a copy reads back as given

    return _text(text)


def unescaped(stored: str) -> str:
    from core.state.postgres import _untext

    return _untext(stored)
