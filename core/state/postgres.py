"""The state store for many machines: a PostgreSQL database (``CONNECTOR_STATE_URL=postgresql://...``).

The same tables and promises as the SQLite store (:mod:`core.state.sqlite`): a batch's cursor,
ledger rows, dead letters and settled in-flight marks commit in one transaction; in-flight marks
commit before the request leaves. What differs is what many machines need: a recipe's lock is a
lease with an expiry (:mod:`core.state.lease`) that fences the writes of a run that lost it, and
the rate budget and OAuth tokens live in the same database (:meth:`budget_store`,
:meth:`token_store`), so every process on every machine shares one budget per credential.

JSON is stored as ASCII text: exact numbers stay exact, and a lone surrogate a source let through
is kept escaped instead of failing the commit.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.digest import exact_json_encoder
from core.json_numbers import parse_json
from core.outcomes import LedgerEntry, Outcome
from core.state import pg_schema, schema
from core.state.base import RUNS_KEPT, Batch, DeadLetter, InFlight, PairView
from core.state.lease import Lease, lease_lost
from core.state.pg_connect import connect, display, unreachable
from core.state.pg_inbox import PostgresInbox

if TYPE_CHECKING:
    import psycopg

    from core.http.budget import BudgetStore
    from core.http.store import TokenStore

_ascii_json = exact_json_encoder(sort_keys=True, ensure_ascii=True)


class PostgresStateStore(PostgresInbox):
    """State in a PostgreSQL database shared by every process on every machine, with the inbox
    of ``connector serve`` (:class:`~core.state.pg_inbox.PostgresInbox`)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.location = display(url)  # never the password
        self._recipe_ids: dict[str, int] = {}
        self._leases: dict[str, str] = {}  # recipe -> this process's holder of its lease
        self._db = connect(url)
        try:
            pg_schema.prepare(self._db, self.location)
        except BaseException as error:
            self._db.close()
            raise self._translated(error) from None

    # --- reading ---------------------------------------------------------------------------

    def cursor(self, recipe: str) -> Any | None:
        return self._recipe_json("cursor", recipe)

    def sink_checkpoint(self, recipe: str) -> dict[str, Any] | None:
        found = self._recipe_json("sink_checkpoint", recipe)
        return found if isinstance(found, dict) else None

    def _recipe_json(self, column: str, recipe: str) -> Any | None:
        query = f"SELECT {column} FROM recipe_state WHERE recipe = %s".encode()
        row = self._fetchone(query, (recipe,))
        return parse_json(row[0]) if row and row[0] is not None else None

    def ledger(self, recipe: str, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        number = self._recipe_id(recipe)
        wanted = list(keys)
        if number is None or not wanted:
            return {}
        rows = self._fetchall(
            "SELECT source_key, payload_hash, sink_key, outcome, updated_at FROM ledger"
            " WHERE recipe = %s AND source_key = ANY(%s)",
            (number, [_text(key) for key in wanted]),
        )
        return {(entry := _entry(row)).key: entry for row in rows}

    def ledger_entries(self, recipe: str) -> list[LedgerEntry]:
        number = self._recipe_id(recipe)
        if number is None:
            return []
        rows = self._fetchall(
            "SELECT source_key, payload_hash, sink_key, outcome, updated_at FROM ledger"
            ' WHERE recipe = %s ORDER BY updated_at, source_key COLLATE "C"',
            (number,),
        )
        return [_entry(row) for row in rows]

    def dead_letters(self, recipe: str) -> list[DeadLetter]:
        rows = self._fetchall(
            "SELECT source_key, outcome, reason, field, record, attempts, updated_at,"
            " payload_hash FROM dead_letters WHERE recipe = %s"
            ' ORDER BY updated_at, source_key COLLATE "C"',
            (recipe,),
        )
        return [
            DeadLetter(
                _untext(r[0]),
                Outcome(r[1]),
                _untext(r[2]),
                _maybe_untext(r[3]),
                parse_json(r[4]),
                r[5],
                r[6],
                r[7],
            )
            for r in rows
        ]

    def in_flight(self, recipe: str) -> list[InFlight]:
        rows = self._fetchall(
            "SELECT source_key, payload_hash, sink_ref, payload, record, since FROM in_flight"
            ' WHERE recipe = %s ORDER BY since, source_key COLLATE "C"',
            (recipe,),
        )
        return [
            InFlight(
                _untext(r[0]), r[1], _maybe_untext(r[2]), parse_json(r[3]), parse_json(r[4]), r[5]
            )
            for r in rows
        ]

    # --- writing ---------------------------------------------------------------------------

    def commit(self, recipe: str, batch: Batch) -> None:
        moment = datetime.now(UTC)
        try:
            with self._transaction(recipe) as db:
                self._commit(db, recipe, batch, moment)
        except BaseException:
            self._recipe_ids.pop(recipe, None)  # its number may have been rolled back with it
            raise

    def _commit(
        self, db: psycopg.Connection[Any], recipe: str, batch: Batch, moment: datetime
    ) -> None:
        now = moment.isoformat(timespec="seconds")
        if batch.ledger:
            number = self._recipe_id(recipe, create=True)
            codes, seconds = schema.OUTCOME_CODES, schema.seconds(moment)
            db.cursor().executemany(
                "INSERT INTO ledger VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (recipe,"
                " source_key) DO UPDATE SET payload_hash = excluded.payload_hash,"
                " sink_key = COALESCE(excluded.sink_key, ledger.sink_key),"
                " outcome = excluded.outcome, updated_at = excluded.updated_at",
                [
                    (number, _text(k), h, _maybe_text(sink), codes[o], seconds)
                    for k, h, sink, o in batch.ledger
                ],
            )
        if batch.views:
            self._write_views(db, recipe, batch.views, schema.seconds(moment))
        if batch.dead_letters:
            db.cursor().executemany(
                "INSERT INTO dead_letters (recipe, source_key, outcome, reason, field, record,"
                " attempts, updated_at, payload_hash) VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s)"
                " ON CONFLICT (recipe, source_key) DO UPDATE SET outcome = excluded.outcome,"
                " reason = excluded.reason, field = excluded.field, record = excluded.record,"
                " attempts = dead_letters.attempts + 1, updated_at = excluded.updated_at,"
                " payload_hash = excluded.payload_hash",
                [
                    (
                        recipe,
                        _text(d.key),
                        str(d.outcome),
                        _text(d.reason),
                        _maybe_text(d.field),
                        _json(d.record),
                        now,
                        d.digest,
                    )
                    for d in batch.dead_letters
                ],
            )
        if batch.resolved:
            db.execute(
                "DELETE FROM dead_letters WHERE recipe = %s AND source_key = ANY(%s)",
                (recipe, [_text(key) for key in batch.resolved]),
            )
        if batch.settled:
            db.execute(
                "DELETE FROM in_flight WHERE recipe = %s AND source_key = ANY(%s)",
                (recipe, [_text(key) for key in batch.settled]),
            )
        if batch.cursor is not None or batch.sink_checkpoint is not None:
            db.execute(
                "INSERT INTO recipe_state VALUES (%s, %s, %s, %s) ON CONFLICT (recipe) DO UPDATE"
                " SET cursor = COALESCE(excluded.cursor, recipe_state.cursor),"
                " sink_checkpoint = COALESCE(excluded.sink_checkpoint,"
                " recipe_state.sink_checkpoint), updated_at = excluded.updated_at",
                (
                    recipe,
                    None if batch.cursor is None else _json(batch.cursor),
                    None if batch.sink_checkpoint is None else _json(batch.sink_checkpoint),
                    now,
                ),
            )

    def _write_views(
        self, db: psycopg.Connection[Any], recipe: str, views: Sequence[PairView], now: int
    ) -> None:
        number = self._recipe_id(recipe, create=True)
        db.cursor().executemany(
            "INSERT INTO pair_views VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (recipe,"
            " source_key) DO UPDATE SET fields = excluded.fields, modified = excluded.modified,"
            " link = COALESCE(excluded.link, pair_views.link), seen_at = excluded.seen_at",
            [
                (number, _text(v.key), _json(v.fields), v.modified, _maybe_text(v.link), now)
                for v in views
            ],
        )

    def pair_views(
        self, recipe: str, keys: Iterable[str] = (), links: Iterable[str] = ()
    ) -> list[PairView]:
        number = self._recipe_id(recipe)
        if number is None:
            return []
        rows = self._fetchall(
            "SELECT source_key, fields, modified, link, seen_at FROM pair_views"
            " WHERE recipe = %s AND (source_key = ANY(%s) OR link = ANY(%s))",
            (number, [_text(k) for k in keys], [_text(k) for k in links]),
        )
        return [
            PairView(
                _untext(r[0]), parse_json(r[1]), r[2], _maybe_untext(r[3]), schema.iso_time(r[4])
            )
            for r in rows
        ]

    def _recipe_id(self, recipe: str, *, create: bool = False) -> int | None:
        """The number the ledger knows ``recipe`` by (made when ``create``); None: no rows."""
        number = self._recipe_ids.get(recipe)
        if number is None:
            if create:
                self._db.execute(
                    "INSERT INTO recipes (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                    (recipe,),
                )
            row = self._fetchone("SELECT id FROM recipes WHERE name = %s", (recipe,))
            if row is None:
                return None
            number = self._recipe_ids[recipe] = int(row[0])
        return number

    def set_sink_key(self, recipe: str, updates: Sequence[tuple[str, str]]) -> None:
        number = self._recipe_id(recipe)
        if number is None or not updates:
            return
        with self._transaction(recipe) as db:
            db.cursor().executemany(
                "UPDATE ledger SET sink_key = %s WHERE recipe = %s AND source_key = %s",
                [(_text(sink_key), number, _text(key)) for key, sink_key in updates],
            )

    def mark_in_flight(self, recipe: str, items: Sequence[InFlight]) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction(recipe) as db:
            db.cursor().executemany(
                "INSERT INTO in_flight VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (recipe, source_key) DO UPDATE SET"
                " payload_hash = excluded.payload_hash, sink_ref = excluded.sink_ref,"
                " payload = excluded.payload, record = excluded.record",
                [
                    (
                        recipe,
                        _text(i.key),
                        i.digest,
                        _maybe_text(i.sink_ref),
                        _json(i.payload),
                        _json(i.record),
                        now,
                    )
                    for i in items
                ],
            )

    def reset(self, recipe: str) -> None:
        with self._transaction(recipe) as db:
            for table in ("recipe_state", "dead_letters", "in_flight", "inbox"):
                db.execute(f"DELETE FROM {table} WHERE recipe = %s".encode(), (recipe,))
            number = "(SELECT id FROM recipes WHERE name = %s)"
            for table in ("ledger", "pair_views"):
                db.execute(f"DELETE FROM {table} WHERE recipe = {number}".encode(), (recipe,))

    def record_run(self, recipe: str, report: dict[str, Any]) -> None:
        started = str(report.get("started_at") or "")
        with self._transaction() as db:
            db.execute("INSERT INTO runs VALUES (%s, %s, %s)", (recipe, started, _json(report)))
            db.execute(
                "DELETE FROM runs WHERE ctid IN (SELECT ctid FROM runs WHERE recipe = %s"
                " ORDER BY started_at DESC OFFSET %s)",
                (recipe, RUNS_KEPT),
            )

    def runs(self, recipe: str) -> list[dict[str, Any]]:
        rows = self._fetchall(
            "SELECT report FROM runs WHERE recipe = %s ORDER BY started_at", (recipe,)
        )
        return [json.loads(row[0]) for row in rows]

    # --- the cache, shared by every recipe ---------------------------------------------------

    def cache_get(self, namespace: str, key: str, max_age_seconds: float) -> Any | None:
        row = self._fetchone(
            "SELECT value, stored_at FROM cache WHERE namespace = %s AND key = %s",
            (namespace, key),
        )
        if row is None or time.time() - row[1] >= max_age_seconds:
            return None
        return parse_json(row[0])

    def cache_put(self, namespace: str, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO cache VALUES (%s, %s, %s, %s) ON CONFLICT (namespace, key)"
                " DO UPDATE SET value = excluded.value, stored_at = excluded.stored_at",
                (namespace, key, _json(value), time.time()),
            )

    # --- many machines -----------------------------------------------------------------------

    def lock(self, recipe: str, *, wait: bool = False) -> AbstractContextManager[None]:
        """The lease on ``recipe``: held by one process on any machine at a time."""
        return Lease(self._url, recipe, wait=wait, on_change=self._leased)

    def _leased(self, recipe: str, holder: str | None) -> None:
        if holder is None:
            self._leases.pop(recipe, None)
        else:
            self._leases[recipe] = holder

    def budget_store(self) -> BudgetStore:
        """The rate budgets in this database, shared by every process using it."""
        from core.http.pg_store import budget_store

        return budget_store(self._url)

    def token_store(self) -> TokenStore:
        """The OAuth tokens in this database, shared by every process using it."""
        from core.http.pg_store import token_store

        return token_store(self._url)

    def close(self) -> None:
        self._db.close()

    # --- plumbing ----------------------------------------------------------------------------

    def _transaction(self, recipe: str | None = None) -> _Transaction:
        return _Transaction(self, recipe)

    def _fence(self, db: psycopg.Connection[Any], recipe: str | None) -> None:
        """Stop a write of a run whose lease another process took over; the row stays locked
        until the commit, so no takeover lands in the middle of it."""
        holder = self._leases.get(recipe) if recipe is not None else None
        if holder is None:
            return  # not run under a lease here (state reset, a replay from the CLI, tests)
        row = db.execute(
            "SELECT 1 FROM leases WHERE recipe = %s AND holder = %s FOR SHARE", (recipe, holder)
        ).fetchone()
        if row is None:
            raise lease_lost(str(recipe), self.location)

    def _fetchone(self, query: Any, params: Sequence[Any]) -> Any:
        with self._reading():
            return self._db.execute(query, params).fetchone()

    def _fetchall(self, query: Any, params: Sequence[Any]) -> list[Any]:
        with self._reading():
            return self._db.execute(query, params).fetchall()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as error:
            raise unreachable(self._url, error) from None

    def _translated(self, error: BaseException) -> BaseException:
        import psycopg

        if isinstance(error, psycopg.OperationalError):
            return unreachable(self._url, error)
        return error


class _Transaction:
    """One transaction on the store's connection, fenced by the recipe's lease when it has one."""

    def __init__(self, store: PostgresStateStore, recipe: str | None) -> None:
        self._store = store
        self._recipe = recipe
        self._inner: Any = None

    def __enter__(self) -> psycopg.Connection[Any]:
        db = self._store._db
        self._inner = db.transaction()
        try:
            self._inner.__enter__()
            self._store._fence(db, self._recipe)
        except BaseException as error:
            self._inner.__exit__(type(error), error, error.__traceback__)
            raise self._store._translated(error) from None
        return db

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._inner.__exit__(exc_type, exc, tb)
        except BaseException as error:
            raise self._store._translated(error) from None
        if exc is not None and (translated := self._store._translated(exc)) is not exc:
            raise translated from None


_new = object.__new__


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    entry: LedgerEntry = _new(LedgerEntry)
    entry.__dict__.update(
        key=_untext(row[0]),
        payload_hash=row[1],
        sink_key=_maybe_untext(row[2]),
        outcome=schema.OUTCOMES[row[3]],
        updated_at=schema.iso_time(row[4]),
    )
    return entry


def _json(value: Any) -> str:
    return _ascii_json(value)


# PostgreSQL text cannot hold NUL, which a source's keys and a refusal's reason may: text the
# store keeps is escaped with U+FFFF (a noncharacter), itself doubled, so every text comes back
# as it was given. Text with neither character (all of it, in practice) is stored as it is.
_ESCAPE, _NUL = "\uffff", "\x00"
_ESCAPED = re.compile("\uffff(.)", re.DOTALL)


def _text(text: str) -> str:
    if _NUL not in text and _ESCAPE not in text:
        return text
    return text.replace(_ESCAPE, _ESCAPE * 2).replace(_NUL, _ESCAPE + "0")


def _untext(stored: str) -> str:
    if _ESCAPE not in stored:
        return stored
    return _ESCAPED.sub(lambda m: _NUL if m.group(1) == "0" else m.group(1), stored)


def _maybe_text(text: str | None) -> str | None:
    return None if text is None else _text(text)


def _maybe_untext(stored: str | None) -> str | None:
    return None if stored is None else _untext(stored)
