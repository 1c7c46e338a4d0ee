"""The inbox of ``connector serve`` in the SQLite state file (:class:`InboxStore`).

A table of events in arrival order (``seq``). An event is claimed with a lease (its holder and
an expiry, renewed while it is processed) rather than a status, so a server killed while it
drains leaves nothing stuck: its claims run out, or are released at once by the next server on
its machine (see :meth:`SqliteInbox.inbox_release`). Its times are this machine's clock: the
file is one machine's, so every process using it reads the same clock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from core.state.base import InboxEvent, NewEvent
from core.state.inbox_records import (
    EVENT_COLUMNS,
    NEW_EVENT_COLUMNS,
    after_failure,
    event_from_row,
    new_event_row,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager


class SqliteInbox:
    """The :class:`~core.state.base.InboxStore` methods of the SQLite state store."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def inbox_enqueue(self, events: Sequence[NewEvent]) -> int:
        # Acknowledged once this returns, so it must survive a power cut too: a service does
        # not deliver an acknowledged event again. Callers enqueue many events at once.
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            return self._enqueue(events, time.time())
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _enqueue(self, events: Sequence[NewEvent], now: float) -> int:
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany(
                f"INSERT OR IGNORE INTO inbox ({NEW_EVENT_COLUMNS}, received_at, available_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*new_event_row(e), now, now) for e in events],
            )
            return self._db.total_changes - before

    def inbox_claim(
        self, recipe: str, limit: int, lease: float, holder: str = ""
    ) -> list[InboxEvent]:
        with self._transaction():  # the clock read once the file is ours: no wait shortens a lease
            now = time.time()
            until = now + lease
            rows = self._db.execute(
                f"SELECT {EVENT_COLUMNS}, ? FROM inbox AS e WHERE recipe = ?"
                " AND status = 'pending' AND available_at <= ?"
                " AND (leased_until IS NULL OR leased_until <= ?)"
                " AND NOT EXISTS (SELECT 1 FROM inbox AS p WHERE p.recipe = e.recipe"
                " AND p.source_key = e.source_key AND p.status = 'pending' AND p.seq < e.seq)"
                " ORDER BY seq LIMIT ?",
                (until, recipe, now, now, limit),
            ).fetchall()
            self._db.executemany(
                "UPDATE inbox SET leased_until = ?, claimed_by = ? WHERE seq = ?",
                [(until, holder, row[0]) for row in rows],
            )
        return [event_from_row(row) for row in rows]

    def inbox_renew(self, seqs: Sequence[int], holder: str, lease: float) -> int:
        with self._transaction():
            until = time.time() + lease
            before = self._db.total_changes
            self._db.executemany(
                "UPDATE inbox SET leased_until = ? WHERE seq = ? AND claimed_by = ?"
                " AND status = 'pending' AND leased_until IS NOT NULL",
                [(until, seq, holder) for seq in seqs],
            )
            return self._db.total_changes - before

    def inbox_done(self, seqs: Sequence[int]) -> None:
        # The record leaves with the event: the donor's data is kept by the sink and the
        # ledger, not twice. The row stays a while so a redelivery of its event id is known.
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "UPDATE inbox SET status = 'done', record = '{}', leased_until = NULL,"
                " claimed_by = NULL, available_at = ?, last_error = NULL WHERE seq = ?",
                [(now, seq) for seq in seqs],
            )

    def inbox_failed(
        self,
        failures: Sequence[tuple[int, str]],
        backoff: Callable[[int], float],
        max_attempts: int,
    ) -> None:
        now = time.time()
        with self._transaction():
            for seq, reason in failures:
                found = self._db.execute("SELECT attempts FROM inbox WHERE seq = ?", (seq,))
                row = found.fetchone()
                if row is None:
                    continue
                attempts, status, wait = after_failure(int(row[0]), backoff, max_attempts)
                self._db.execute(
                    "UPDATE inbox SET attempts = ?, status = ?, available_at = ?,"
                    " leased_until = NULL, claimed_by = NULL, last_error = ? WHERE seq = ?",
                    (attempts, status, now + wait, reason, seq),
                )

    def inbox_release(self, recipe: str, gone: Callable[[str], bool]) -> int:
        now = time.time()
        with self._transaction():
            holders = self._db.execute(
                "SELECT DISTINCT claimed_by FROM inbox WHERE recipe = ? AND leased_until > ?",
                (recipe, now),
            )
            freed = [h for (h,) in holders if gone(h or "")]
            marks = ",".join("?" * len(freed))
            cursor = self._db.execute(
                "UPDATE inbox SET leased_until = NULL, claimed_by = NULL"
                " WHERE recipe = ? AND leased_until IS NOT NULL"
                f" AND (leased_until <= ? OR coalesce(claimed_by, '') IN ({marks}))",
                (recipe, now, *[h or "" for h in freed]),
            )
            return cursor.rowcount

    def inbox_events(
        self, recipe: str, statuses: Sequence[str] = ("pending", "failed"), limit: int = 1000
    ) -> list[InboxEvent]:
        marks = ",".join("?" * len(statuses))
        rows = self._db.execute(
            f"SELECT {EVENT_COLUMNS}, CASE WHEN leased_until > ? THEN leased_until END"
            f" FROM inbox WHERE recipe = ? AND status IN ({marks}) ORDER BY seq LIMIT ?",
            (time.time(), recipe, *statuses, limit),
        ).fetchall()
        return [event_from_row(row) for row in rows]

    def inbox_retry(self, recipe: str) -> int:
        now = time.time()
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE inbox SET status = 'pending', attempts = 0, available_at = ?"
                " WHERE recipe = ? AND (status = 'failed' OR (status = 'pending'"
                " AND available_at > ?))",
                (now, recipe, now),
            )
            return cursor.rowcount

    def inbox_depth(self) -> dict[tuple[str, str], int]:
        rows = self._db.execute(
            "SELECT recipe, status, count(*) FROM inbox WHERE status != 'done'"
            " GROUP BY recipe, status"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def inbox_prune(self, keep: float) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM inbox WHERE status = 'done' AND received_at < ?",
                (time.time() - keep,),
            )
            return cursor.rowcount
