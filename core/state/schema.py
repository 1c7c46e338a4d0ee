"""The state database's tables, its schema version, and the migration of older files.

Version 2 keeps the ledger compact (it has a row for every record a recipe ever wrote): a
``WITHOUT ROWID`` table keyed by a small recipe number instead of the recipe's name, the payload
digest as its 32 bytes instead of 64 hex characters, the outcome as a number and the time as
Unix seconds. A file of version 1 (before the version was recorded) is migrated when it is
opened, digests unchanged: every record it holds stays ``unchanged`` on the next run.

Version 3 adds the ``inbox`` of ``connector serve`` (see :class:`core.state.base.InboxStore`):
an older file gains the empty table when it is opened.

Version 4 adds ``pair_views``, what each recipe of a two-way pair last read of a record (see
:mod:`core.two_way`); an older file gains the empty table when it is opened. Version 5 records
when each view last changed (``seen_at``; 0 in a view of version 4). Version 6 adds ``runs``,
each run's report, for ``connector report``; an older file gains the empty table when opened.
Version 7 names the holder of each inbox claim (``claimed_by``), so a starting server frees only
claims no live process holds; an older file's claims have none, and run out.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from functools import lru_cache

from core.outcomes import Outcome

VERSION = 7

_TABLES = """
CREATE TABLE IF NOT EXISTS recipe_state (
    recipe TEXT PRIMARY KEY,
    cursor TEXT,
    sink_checkpoint TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recipes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS ledger (
    recipe INTEGER NOT NULL,
    source_key TEXT NOT NULL,
    payload_hash BLOB NOT NULL,
    sink_key TEXT,
    outcome INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (recipe, source_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
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
CREATE TABLE IF NOT EXISTS in_flight (
    recipe TEXT NOT NULL,
    source_key TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    sink_ref TEXT,
    payload TEXT NOT NULL,
    record TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (recipe, source_key)
);
CREATE TABLE IF NOT EXISTS cache (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe TEXT NOT NULL,
    event_id TEXT,
    type TEXT NOT NULL,
    source_key TEXT NOT NULL,
    record TEXT NOT NULL,
    occurred_at TEXT,
    received_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    leased_until REAL,
    last_error TEXT,
    claimed_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS inbox_event_id ON inbox (recipe, event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbox_by_status ON inbox (recipe, status, seq);
CREATE INDEX IF NOT EXISTS inbox_by_key ON inbox (recipe, source_key, status, seq);
CREATE TABLE IF NOT EXISTS pair_views (
    recipe INTEGER NOT NULL,
    source_key TEXT NOT NULL,
    fields TEXT NOT NULL,
    modified TEXT,
    link TEXT,
    seen_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (recipe, source_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pair_views_by_link ON pair_views (recipe, link);
CREATE TABLE IF NOT EXISTS runs (
    recipe TEXT NOT NULL,
    started_at TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_recipe ON runs (recipe, started_at);
CREATE TABLE IF NOT EXISTS state_schema (version INTEGER NOT NULL);
"""

#: Outcome <-> the number the ledger stores. Append only: a stored number keeps its meaning.
OUTCOMES: tuple[Outcome, ...] = (
    Outcome.WRITTEN,
    Outcome.UPDATED,
    Outcome.UNCHANGED,
    Outcome.FILTERED,
    Outcome.INVALID,
    Outcome.FAILED,
    Outcome.NEEDS_REVIEW,
    Outcome.ECHO,
)
OUTCOME_CODES: dict[Outcome, int] = {outcome: code for code, outcome in enumerate(OUTCOMES)}


def pack_digest(digest: str) -> bytes | str:
    """A sha256 hex digest as its 32 bytes; any other text (never made by this project's
    digests) is kept as it is, so it still compares equal to itself."""
    if len(digest) == 64:
        try:
            packed = bytes.fromhex(digest)
        except ValueError:
            return digest
        if packed.hex() == digest:  # lower-case only: upper case would not come back the same
            return packed
    return digest


def unpack_digest(stored: bytes | str) -> str:
    return stored.hex() if isinstance(stored, bytes) else stored


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


@lru_cache(maxsize=4096)  # a batch's rows share one second
def iso_time(stored: int | str) -> str:
    """A stored time as the ISO text the store reports (a time kept as text is shown as is)."""
    if isinstance(stored, str):
        return stored
    return datetime.fromtimestamp(stored, UTC).isoformat(timespec="seconds")


def prepare(db: sqlite3.Connection) -> None:
    """Bring the file to :data:`VERSION`: create the tables of a new one, migrate an older one.

    A file already at this version is only read, so opening it takes no write lock.
    """
    if _version(db) == VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _version(db)  # another process may have migrated it meanwhile
        if found != VERSION:
            _migrate(db, found)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _version(db: sqlite3.Connection) -> int:
    """The file's version: 0 for a new file, 1 for a file from before versions were kept."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "state_schema" in tables:
        row = db.execute("SELECT max(version) FROM state_schema").fetchone()
        return int(row[0] or 0)
    return 1 if "ledger" in tables else 0


def _migrate(db: sqlite3.Connection, found: int) -> None:
    if found > VERSION:
        msg = (
            f"the state database is of version {found}, newer than this connector knows"
            f" ({VERSION}); upgrade connector"
        )
        raise sqlite3.DatabaseError(msg)
    if found == 1:
        _add_refused_digest(db)
        db.execute("ALTER TABLE ledger RENAME TO ledger_v1")
    for statement in _TABLES.split(";"):
        if statement.strip():
            db.execute(statement)
    if found == 1:
        _ledger_from_v1(db)
    _add_view_time(db)
    _add_claim_holder(db)
    db.execute("DELETE FROM state_schema")
    db.execute("INSERT INTO state_schema VALUES (?)", (VERSION,))


def _add_refused_digest(db: sqlite3.Connection) -> None:
    """A state file from before dead letters kept the refused payload's digest gains the column;
    its dead letters have none, so a plain run sends them again once, as it did."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
    if columns and "payload_hash" not in columns:
        db.execute("ALTER TABLE dead_letters ADD COLUMN payload_hash TEXT")


def _add_view_time(db: sqlite3.Connection) -> None:
    """Views kept by version 4 gain the time they changed, as long ago (0)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(pair_views)")}
    if "seen_at" not in columns:
        db.execute("ALTER TABLE pair_views ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0")


def _add_claim_holder(db: sqlite3.Connection) -> None:
    """An inbox of version 3 to 6 gains the holder of each claim (none: its claims run out)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(inbox)")}
    if "claimed_by" not in columns:
        db.execute("ALTER TABLE inbox ADD COLUMN claimed_by TEXT")


def _ledger_from_v1(db: sqlite3.Connection) -> None:
    """Copy version 1's ledger (recipe names, hex digests, outcome and time as text)."""
    db.create_function("pack_digest", 1, pack_digest, deterministic=True)
    db.create_function("outcome_code", 1, _outcome_code, deterministic=True)
    db.create_function("stored_time", 1, _stored_time, deterministic=True)
    db.execute("INSERT OR IGNORE INTO recipes (name) SELECT DISTINCT recipe FROM ledger_v1")
    db.execute(
        "INSERT INTO ledger SELECT r.id, l.source_key, pack_digest(l.payload_hash), l.sink_key,"
        " outcome_code(l.outcome), stored_time(l.updated_at)"
        " FROM ledger_v1 AS l JOIN recipes AS r ON r.name = l.recipe"
    )
    db.execute("DROP TABLE ledger_v1")


def _outcome_code(text: str) -> int:
    return OUTCOME_CODES[Outcome(text)]


def _stored_time(text: str) -> int | str:
    try:
        return seconds(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        return text  # not a time this project wrote: kept, and shown, as it was
