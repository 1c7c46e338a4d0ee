"""The PostgreSQL state database's tables, its schema version, and the migrations on start.

The tables live in the connection's schema (``search_path``; ``public`` unless the URL sets
``options=-csearch_path%3DNAME``), so one database can hold several deployments apart. Each
version's migration is a list of statements run in one transaction, under an advisory lock, so
many workers starting at once migrate it once. A database of a newer version than this connector
knows is refused: its tables may mean something this version would get wrong.

Version 1: the state, leases, rate budgets and tokens. Version 2: the views of two-way pairs.
Version 3: the inbox of ``connector serve``. Version 4: when each view last changed.
Version 5: each run's report (``runs``), for ``connector report``. Version 6: the holder of
each inbox claim, so a starting server frees only claims no live process holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import FatalError

if TYPE_CHECKING:
    import psycopg

VERSION = 6

_V1 = """
CREATE TABLE recipe_state (
    recipe TEXT PRIMARY KEY,
    cursor TEXT,
    sink_checkpoint TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE recipes (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE ledger (
    recipe INTEGER NOT NULL,
    source_key TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    sink_key TEXT,
    outcome SMALLINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (recipe, source_key)
);
CREATE TABLE dead_letters (
    recipe TEXT NOT NULL,
    source_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    field TEXT,
    record TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    payload_hash TEXT,
    PRIMARY KEY (recipe, source_key)
);
CREATE TABLE in_flight (
    recipe TEXT NOT NULL,
    source_key TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    sink_ref TEXT,
    payload TEXT NOT NULL,
    record TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (recipe, source_key)
);
CREATE TABLE cache (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE leases (
    recipe TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE http_budget (
    key TEXT PRIMARY KEY,
    blocked_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    server_remaining INTEGER,
    server_reset DOUBLE PRECISION,
    server_limit INTEGER,
    server_window DOUBLE PRECISION
);
CREATE TABLE http_budget_log (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX http_budget_log_key_at ON http_budget_log (key, at);
CREATE TABLE http_tokens (
    key TEXT PRIMARY KEY,
    tokens TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)
"""

# What each recipe of a two-way pair last read of a record (see core.two_way).
_V2 = """
CREATE TABLE pair_views (
    recipe INTEGER NOT NULL,
    source_key TEXT NOT NULL,
    fields TEXT NOT NULL,
    modified TEXT,
    link TEXT,
    PRIMARY KEY (recipe, source_key)
);
CREATE INDEX pair_views_by_link ON pair_views (recipe, link)
"""

# The inbox of ``connector serve`` (see :class:`core.state.base.InboxStore`), as SQLite's.
_V3 = """
CREATE TABLE inbox (
    seq BIGSERIAL PRIMARY KEY,
    recipe TEXT NOT NULL,
    event_id TEXT,
    type TEXT NOT NULL,
    source_key TEXT NOT NULL,
    record TEXT NOT NULL,
    occurred_at TEXT,
    received_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at DOUBLE PRECISION NOT NULL,
    leased_until DOUBLE PRECISION,
    last_error TEXT
);
CREATE UNIQUE INDEX inbox_event_id ON inbox (recipe, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX inbox_by_status ON inbox (recipe, status, seq);
CREATE INDEX inbox_by_key ON inbox (recipe, source_key, status, seq)
"""

# When each two-way view last changed (0: before this version).
_V4 = "ALTER TABLE pair_views ADD COLUMN seen_at BIGINT NOT NULL DEFAULT 0"

# Each run's report, as JSON text (what `connector run --json` prints).
_V5 = """
CREATE TABLE runs (
    recipe TEXT NOT NULL,
    started_at TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX runs_by_recipe ON runs (recipe, started_at)
"""

# Who holds each inbox claim (none for a claim made before: it runs out).
_V6 = "ALTER TABLE inbox ADD COLUMN claimed_by TEXT"

#: The statements that bring a database of version N-1 to version N.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5, 6: _V6}

# Any fixed number: the advisory lock that serializes migrations of one database.
_MIGRATION_LOCK = 0x636F6E6E  # "conn"


def prepare(db: psycopg.Connection[Any], where: str) -> None:
    """Bring the database's schema to :data:`VERSION`; one already there is only read."""
    if version(db) == VERSION:
        return
    # A session lock taken before the transaction begins: the transaction then sees the tables
    # of a migration another process committed while this one waited.
    db.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        with db.transaction():
            _migrate(db, where)
    finally:
        db.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def _migrate(db: psycopg.Connection[Any], where: str) -> None:
    found = version(db)  # another process may have migrated it meanwhile
    if found == VERSION:
        return
    if found > VERSION:
        msg = (
            f"the state database {where} is of version {found}, newer than this connector"
            f" knows ({VERSION}); upgrade connector"
        )
        raise FatalError(msg)
    if db.execute("SELECT current_schema()").fetchone() == (None,):
        msg = (
            f"the state database {where} has no schema to create its tables in: create"
            " it, or name one with options=-csearch_path%3DNAME"
        )
        raise FatalError(msg)
    db.execute("CREATE TABLE IF NOT EXISTS state_schema (version INTEGER NOT NULL)")
    for number in range(found + 1, VERSION + 1):
        for statement in MIGRATIONS[number].split(";"):
            db.execute(statement.strip().encode())
    db.execute("DELETE FROM state_schema")
    db.execute("INSERT INTO state_schema VALUES (%s)", (VERSION,))


def version(db: psycopg.Connection[Any]) -> int:
    """The schema's version; 0 when it has no state tables yet."""
    row = db.execute("SELECT to_regclass('state_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = db.execute("SELECT max(version) FROM state_schema").fetchone()
    return int(str(found[0])) if found and found[0] is not None else 0
