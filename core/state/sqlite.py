"""The default state store: one SQLite file beside the recipe (``.connector/state.db``)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.digest import exact_json_encoder
from core.errors import FatalError
from core.json_numbers import parse_json
from core.outcomes import LedgerEntry, Outcome
from core.state import schema
from core.state.base import RUNS_KEPT, Batch, DeadLetter, InFlight, PairView
from core.state.lock import busy_timeout, database_locked, is_busy, private_file, recipe_lock
from core.state.sqlite_inbox import SqliteInbox

# How many keys go into one `IN (...)` lookup; SQLite's default limit on variables is 32766.
_CHUNK = 500


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteStateStore(SqliteInbox):
    """State in a SQLite file, in WAL mode so a reader never blocks the running recipe; with
    the inbox of ``connector serve`` (:class:`~core.state.sqlite_inbox.SqliteInbox`)."""

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        self._recipe_ids: dict[str, int] = {}
        self._path = path
        # Waiting for another process's write lock ends in a clear stop, not a traceback.
        self._busy_timeout = busy_timeout()
        try:
            private_file(path)  # donors' names, emails and amounts: its owner's only
            self._db = sqlite3.connect(path, timeout=self._busy_timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            # In WAL mode NORMAL keeps the file consistent and syncs at checkpoints: a power cut
            # may undo the last commits, never half of one. What must survive one is made
            # durable on its own: the in-flight marks (see mark_in_flight), whose sync carries
            # every commit before them to the disk too.
            self._db.execute("PRAGMA synchronous=NORMAL")
            schema.prepare(self._db)
        except (OSError, sqlite3.Error) as error:
            msg = f"cannot open the state store {path}: {error}"
            raise FatalError(msg) from error

    def cursor(self, recipe: str) -> Any | None:
        row = self._db.execute(
            "SELECT cursor FROM recipe_state WHERE recipe = ?", (recipe,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def sink_checkpoint(self, recipe: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT sink_checkpoint FROM recipe_state WHERE recipe = ?", (recipe,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def ledger(self, recipe: str, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        number = self._recipe_id(recipe)
        if number is None:
            return {}  # nothing was ever written for this recipe
        wanted = list(keys)
        found: dict[str, LedgerEntry] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT source_key, payload_hash, sink_key, outcome, updated_at FROM ledger"
                f" WHERE recipe = ? AND source_key IN ({marks})",
                (number, *chunk),
            )
            for row in rows:
                found[row[0]] = _entry(row)
        return found

    def ledger_entries(self, recipe: str) -> list[LedgerEntry]:
        number = self._recipe_id(recipe)
        if number is None:
            return []
        rows = self._db.execute(
            "SELECT source_key, payload_hash, sink_key, outcome, updated_at FROM ledger"
            " WHERE recipe = ? ORDER BY updated_at, source_key",
            (number,),
        )
        return [_entry(row) for row in rows]

    def commit(self, recipe: str, batch: Batch) -> None:
        moment = datetime.now(UTC)
        now = moment.isoformat(timespec="seconds")
        try:
            self._commit(recipe, batch, now, schema.seconds(moment))
        except BaseException:
            self._recipe_ids.pop(recipe, None)  # its number may have been rolled back with it
            raise

    def _commit(self, recipe: str, batch: Batch, now: str, seconds: int) -> None:
        with self._transaction():
            if batch.ledger:
                self._write_ledger(recipe, batch, seconds)
            if batch.views:
                self._write_views(recipe, batch.views, seconds)
            self._db.executemany(
                "INSERT INTO dead_letters (recipe, source_key, outcome, reason, field, record,"
                " attempts, updated_at, payload_hash) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)"
                " ON CONFLICT (recipe, source_key) DO UPDATE SET outcome = excluded.outcome,"
                " reason = excluded.reason, field = excluded.field, record = excluded.record,"
                " attempts = dead_letters.attempts + 1, updated_at = excluded.updated_at,"
                " payload_hash = excluded.payload_hash",
                [
                    (
                        recipe,
                        d.key,
                        str(d.outcome),
                        d.reason,
                        d.field,
                        _ascii(d.record),
                        now,
                        d.digest,
                    )
                    for d in batch.dead_letters
                ],
            )
            if batch.resolved and self._has_dead_letters(recipe):
                self._db.executemany(
                    "DELETE FROM dead_letters WHERE recipe = ? AND source_key = ?",
                    [(recipe, key) for key in batch.resolved],
                )
            self._db.executemany(
                "DELETE FROM in_flight WHERE recipe = ? AND source_key = ?",
                [(recipe, key) for key in batch.settled],
            )
            if batch.cursor is not None or batch.sink_checkpoint is not None:
                self._db.execute(
                    "INSERT INTO recipe_state VALUES (?, ?, ?, ?) ON CONFLICT (recipe) DO UPDATE"
                    " SET cursor = COALESCE(excluded.cursor, recipe_state.cursor),"
                    " sink_checkpoint = COALESCE(excluded.sink_checkpoint,"
                    " recipe_state.sink_checkpoint), updated_at = excluded.updated_at",
                    (
                        recipe,
                        None if batch.cursor is None else _dumps(batch.cursor),
                        None if batch.sink_checkpoint is None else _dumps(batch.sink_checkpoint),
                        now,
                    ),
                )

    def _write_ledger(self, recipe: str, batch: Batch, now: int) -> None:
        number = self._recipe_id(recipe, create=True)
        codes, pack = schema.OUTCOME_CODES, schema.pack_digest
        self._db.executemany(
            "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (recipe, source_key)"
            " DO UPDATE SET payload_hash = excluded.payload_hash,"
            " sink_key = COALESCE(excluded.sink_key, ledger.sink_key),"
            " outcome = excluded.outcome, updated_at = excluded.updated_at",
            [(number, k, pack(h), sink, codes[o], now) for k, h, sink, o in batch.ledger],
        )

    def _write_views(self, recipe: str, views: Sequence[PairView], now: int) -> None:
        number = self._recipe_id(recipe, create=True)
        self._db.executemany(
            "INSERT INTO pair_views VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (recipe, source_key)"
            " DO UPDATE SET fields = excluded.fields, modified = excluded.modified,"
            " link = COALESCE(excluded.link, pair_views.link), seen_at = excluded.seen_at",
            [(number, v.key, _ascii(v.fields), v.modified, v.link, now) for v in views],
        )

    def pair_views(
        self, recipe: str, keys: Iterable[str] = (), links: Iterable[str] = ()
    ) -> list[PairView]:
        number = self._recipe_id(recipe)
        if number is None:
            return []
        found: dict[str, PairView] = {}
        for column, wanted in (("source_key", list(keys)), ("link", list(links))):
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = self._db.execute(
                    "SELECT source_key, fields, modified, link, seen_at FROM pair_views"
                    f" WHERE recipe = ? AND {column} IN ({','.join('?' * len(chunk))})",
                    (number, *chunk),
                )
                for r in rows:
                    fields = parse_json(r[1])
                    found[r[0]] = PairView(r[0], fields, r[2], r[3], schema.iso_time(r[4]))
        return list(found.values())

    def _has_dead_letters(self, recipe: str) -> bool:
        """One look instead of a delete per resolved record, when (as usual) there are none."""
        found = self._db.execute(
            "SELECT 1 FROM dead_letters WHERE recipe = ? LIMIT 1", (recipe,)
        ).fetchone()
        return found is not None

    def _recipe_id(self, recipe: str, *, create: bool = False) -> int | None:
        """The number the ledger knows ``recipe`` by (made when ``create``); None: no rows."""
        number = self._recipe_ids.get(recipe)
        if number is None:
            if create:
                self._db.execute("INSERT OR IGNORE INTO recipes (name) VALUES (?)", (recipe,))
            row = self._db.execute("SELECT id FROM recipes WHERE name = ?", (recipe,)).fetchone()
            if row is None:
                return None
            number = self._recipe_ids[recipe] = int(row[0])
        return number

    def set_sink_key(self, recipe: str, updates: Sequence[tuple[str, str]]) -> None:
        with self._transaction():
            number = self._recipe_id(recipe)
            if number is None:
                return
            self._db.executemany(
                "UPDATE ledger SET sink_key = ? WHERE recipe = ? AND source_key = ?",
                [(sink_key, number, key) for key, sink_key in updates],
            )

    def mark_in_flight(self, recipe: str, items: Sequence[InFlight]) -> None:
        now = _now()
        # Durable before the request leaves, even across a power cut: a lost mark would let
        # the next run send again what the service may already hold.
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._mark(recipe, items, now)
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _mark(self, recipe: str, items: Sequence[InFlight], now: str) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO in_flight VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (recipe, source_key) DO UPDATE SET"
                " payload_hash = excluded.payload_hash, sink_ref = excluded.sink_ref,"
                " payload = excluded.payload, record = excluded.record",
                [
                    (recipe, i.key, i.digest, i.sink_ref, _ascii(i.payload), _ascii(i.record), now)
                    for i in items
                ],
            )

    def in_flight(self, recipe: str) -> list[InFlight]:
        rows = self._db.execute(
            "SELECT source_key, payload_hash, sink_ref, payload, record, since FROM in_flight"
            " WHERE recipe = ? ORDER BY since, source_key",
            (recipe,),
        )
        return [InFlight(r[0], r[1], r[2], parse_json(r[3]), parse_json(r[4]), r[5]) for r in rows]

    def dead_letters(self, recipe: str) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT source_key, outcome, reason, field, record, attempts, updated_at,"
            " payload_hash FROM dead_letters WHERE recipe = ? ORDER BY updated_at, source_key",
            (recipe,),
        )
        return [
            DeadLetter(r[0], Outcome(r[1]), r[2], r[3], parse_json(r[4]), r[5], r[6], r[7])
            for r in rows
        ]

    def reset(self, recipe: str) -> None:
        with self._transaction():
            for table in ("recipe_state", "dead_letters", "in_flight", "inbox"):
                self._db.execute(f"DELETE FROM {table} WHERE recipe = ?", (recipe,))
            number = self._recipe_id(recipe)
            if number is not None:
                self._db.execute("DELETE FROM ledger WHERE recipe = ?", (number,))
                self._db.execute("DELETE FROM pair_views WHERE recipe = ?", (number,))

    def record_run(self, recipe: str, report: dict[str, Any]) -> None:
        started = str(report.get("started_at") or _now())
        with self._transaction():
            self._db.execute("INSERT INTO runs VALUES (?, ?, ?)", (recipe, started, _dumps(report)))
            self._db.execute(
                "DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE recipe = ?"
                " ORDER BY started_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (recipe, RUNS_KEPT),
            )

    def runs(self, recipe: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT report FROM runs WHERE recipe = ? ORDER BY started_at, rowid", (recipe,)
        )
        return [json.loads(row[0]) for row in rows]

    def cache_get(self, namespace: str, key: str, max_age_seconds: float) -> Any | None:
        row = self._db.execute(
            "SELECT value, stored_at FROM cache WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        if row is None or time.time() - row[1] >= max_age_seconds:
            return None
        return parse_json(row[0])

    def cache_put(self, namespace: str, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO cache VALUES (?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE"
            " SET value = excluded.value, stored_at = excluded.stored_at",
            (namespace, key, _dumps(value), time.time()),
        )

    def lock(self, recipe: str, *, wait: bool = False) -> AbstractContextManager[None]:
        return recipe_lock(self._path.parent / "locks", recipe, wait=wait)

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.location, self._busy_timeout)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection, location: str = "", waited: float = 0.0) -> None:
        self._db = db
        self._location = location
        self._waited = waited

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if is_busy(error):
                raise database_locked(self._location, self._waited) from None
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


# Built once: json.dumps would build an encoder for every record.
_sorted_json = exact_json_encoder(sort_keys=True)
_ascii_json = exact_json_encoder(sort_keys=True, ensure_ascii=True)

_new = object.__new__


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    """A ledger row as a :class:`LedgerEntry`, one per record read: its fields set in its
    ``__dict__`` one by one, at a quarter of the cost of the frozen dataclass's ``__init__``
    (which sets each through a call) and half of a ``__dict__.update`` with keywords."""
    entry: LedgerEntry = _new(LedgerEntry)
    fields = entry.__dict__
    fields["key"] = row[0]
    digest = row[1]  # schema.unpack_digest, inlined
    fields["payload_hash"] = digest.hex() if digest.__class__ is bytes else digest
    fields["sink_key"] = row[2]
    fields["outcome"] = _OUTCOMES[row[3]]
    fields["updated_at"] = _iso_time(row[4])
    return entry


_OUTCOMES, _iso_time = schema.OUTCOMES, schema.iso_time


def _dumps(value: Any) -> str:
    # Exact numbers stay numbers, so a dead-lettered record replays as it was read.
    return _sorted_json(value)


def _ascii(value: Any) -> str:
    """JSON with every non-ASCII character escaped: a lone surrogate a source let through
    (valid in JSON text, not in UTF-8) is kept as ``\\udc80`` instead of failing the commit."""
    return _ascii_json(value)
