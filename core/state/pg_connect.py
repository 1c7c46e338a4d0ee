"""Connections to a PostgreSQL state database, and the one-line errors when there is none.

A state URL (``postgresql://user:password@host:port/db?options=-csearch_path%3Dtenant``) holds
a password: only :func:`display` of it is ever shown (in reports, errors, ``state show``), so
the password stays out of every log, report and message.

psycopg is imported when a Postgres URL is opened, never at start-up.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.errors import FatalError, RecipeError

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql://", "postgres://")
#: Seconds to wait for the server to answer a new connection.
CONNECT_TIMEOUT = 10


def is_postgres(location: str) -> bool:
    return location.startswith(SCHEMES)


def display(url: str) -> str:
    """``url`` without its password: ``postgresql://user@host:port/db``."""
    parts = _parts(url)
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname', '')}"


def _parts(url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    try:
        found = conninfo_to_dict(url)
    except Exception as error:  # psycopg.ProgrammingError; the URL itself is never shown
        reason = _one_line(str(error)).replace(url, "<url>")
        if secret := _password_of(url):  # a fragment quoted from the URL may hold it
            reason = reason.replace(secret, "***")
        msg = f"the state URL (--state or CONNECTOR_STATE_URL) is not a PostgreSQL URL: {reason}"
        raise RecipeError(msg) from None
    return {name: str(value) for name, value in found.items() if value is not None}


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection in autocommit mode (transactions are explicit), or a one-line FatalError
    naming the server, never the password."""
    import psycopg

    _parts(url)  # a malformed URL is the user's to fix: exit 2, not 3
    try:
        named: dict[str, Any] = _application_name(url)
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **named)
    except psycopg.Error as error:
        raise unreachable(url, error) from None


def _application_name(url: str) -> dict[str, str]:
    """Names the process in ``pg_stat_activity``, unless the URL names it already."""
    if "application_name" in _parts(url):
        return {}
    return {"application_name": f"connector {os.getpid()}"}


def unreachable(url: str, error: BaseException) -> FatalError:
    secret = _parts(url).get("password")
    reason = _one_line(str(error))
    if secret:
        reason = reason.replace(secret, "***")
    return FatalError(f"cannot use the state database {display(url)}: {reason}")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip() or "no reason given"


class Connections:
    """A few connections shared by the threads of one process (the rate budget and the tokens:
    short statements from the HTTP clients' threads). Idle ones are kept for the next caller;
    a process forked from this one opens its own, as a connection must not cross a fork."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # Ended cleanly at exit: the server logs no broken connection, psycopg warns of none.
        atexit.register(self.close)

    def close(self) -> None:
        """Close the idle connections (those in use close when their caller is done)."""
        with self._lock:
            idle, self._idle = self._idle, []
            if self._pid != os.getpid():
                return  # a forked child's inherited copy: the parent's to close
        for db in idle:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside a transaction, committed on success, rolled back on error."""
        db = self._begun()
        try:
            yield db
        except BaseException:
            self._end(db, b"ROLLBACK", quiet=True)
            raise
        self._end(db, b"COMMIT")

    def _begun(self) -> psycopg.Connection[Any]:
        """A connection in a new transaction. An idle one the server dropped meanwhile (it
        restarted, a network cut) fails at BEGIN, when nothing has been done: a new one is
        opened instead."""
        import psycopg

        db = self._take()
        try:
            db.execute("BEGIN")
        except psycopg.OperationalError:
            db.close()
            db = connect(self._url)
            try:
                db.execute("BEGIN")
            except psycopg.OperationalError as error:
                db.close()
                raise unreachable(self._url, error) from None
        return db

    def _end(self, db: psycopg.Connection[Any], statement: bytes, *, quiet: bool = False) -> None:
        import psycopg

        try:
            db.execute(statement)
        except psycopg.Error as error:
            db.close()  # broken, or in a state no other caller should inherit
            if not quiet:
                raise unreachable(self._url, error) from None
            return
        self._give_back(db)

    def _take(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._pid != os.getpid():
                self._idle, self._pid = [], os.getpid()  # the parent's: never used here
            while self._idle:
                db = self._idle.pop()
                if not db.closed:
                    return db
        return connect(self._url)

    def _give_back(self, db: psycopg.Connection[Any]) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._idle.append(db)


@functools.cache
def shared(url: str) -> Connections:
    """The connections this process shares for the database at ``url``: the leases' renewals,
    the rate budgets and the tokens (the state store keeps one of its own for its batches)."""
    return Connections(url)
