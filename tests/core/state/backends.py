"""The state backends every state test runs against: SQLite in the test's folder, and Postgres
(127.0.0.1:5432, database ``test``) in a schema of this test session's own.

Other suites use the same server at the same time: this session's tables live in a schema of its
own (``connector_test_<random>``, named in the URL's ``search_path``), created and migrated once
and dropped at the end; each test starts with its tables emptied (:func:`emptied`), which costs a
fraction of creating them. Tests of the schema itself take a fresh one (:func:`postgres_schema`).
"""

from __future__ import annotations

import atexit
import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

#: The server the suite uses; ``CONNECTOR_TEST_POSTGRES`` points it elsewhere.
SERVER = os.environ.get("CONNECTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgres"]


@functools.cache
def _admin() -> Any:
    """One connection per test session that creates and drops the tests' schemas, or the
    reason there is none."""
    import psycopg

    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable at {SERVER}: {str(error).strip().splitlines()[0]}"
    # Closed before the interpreter tears down: psycopg warns about a connection left open.
    atexit.register(admin.close)
    return admin


def postgres_or_skip() -> Any:
    admin = _admin()
    if isinstance(admin, str):
        pytest.skip(admin)
    return admin


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A state URL whose tables live in a fresh schema, dropped (with them) at the end."""
    admin = postgres_or_skip()
    name = f"connector_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{SERVER}?options=-csearch_path%3D{name}"
    finally:
        admin.execute(f"DROP SCHEMA {name} CASCADE")


@contextmanager
def session_schema() -> Iterator[str]:
    """The URL of this session's schema, its tables made; dropped at the end of the block."""
    from core.state.postgres import PostgresStateStore

    with postgres_schema() as url:
        PostgresStateStore(url).close()
        yield url


def emptied(url: str) -> str:
    """``url``, every table of its schema emptied (its version kept): a test's clean state."""
    admin, schema = postgres_or_skip(), url.rsplit("%3D", 1)[1]
    tables = admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename != 'state_schema'",
        (schema,),
    ).fetchall()
    listed = ", ".join(f"{schema}.{table}" for (table,) in tables)
    admin.execute(f"TRUNCATE {listed} RESTART IDENTITY")
    return url


def store_class(location: str) -> type:
    """The class of the store ``open_state(location)`` opens, for tests that patch it."""
    from core.state import SqliteStateStore
    from core.state.pg_connect import is_postgres
    from core.state.postgres import PostgresStateStore

    return PostgresStateStore if is_postgres(location) else SqliteStateStore


def budgets_opener(url: str) -> Any:
    """Opens budget stores on the schema of ``url``, each with connections of its own, as
    another process's would be."""
    from core.http.pg_store import PostgresBudgetStore

    return lambda: PostgresBudgetStore(url)


def time_passes(location: str, seconds: float) -> None:
    """As if ``seconds`` went by for the inbox at ``location``: every time it keeps moves that
    far into the past (a store reads its own clock, which a test cannot turn)."""
    import sqlite3

    import psycopg

    from core.state.pg_connect import is_postgres

    columns = ("received_at", "available_at", "leased_until")
    if is_postgres(location):
        shift = ", ".join(f"{column} = {column} - %(s)s" for column in columns)
        with psycopg.connect(location, autocommit=True) as db:
            db.execute(f"UPDATE inbox SET {shift}", {"s": seconds})
        return
    shift = ", ".join(f"{column} = {column} - :s" for column in columns)
    with sqlite3.connect(location) as file:  # commits, but does not close
        file.execute(f"UPDATE inbox SET {shift}", {"s": seconds})
    file.close()
