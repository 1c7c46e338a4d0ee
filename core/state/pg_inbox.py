"""The inbox of ``connector serve`` in a Postgres state database (:class:`InboxStore`).

Many servers and workers on many machines drain it together. A claim takes the oldest due
events with ``FOR UPDATE SKIP LOCKED`` (two claims at once never wait for, nor take, the same
rows) and leases them to its holder until a time, renewed while the holder works on them; a
starting server releases only leases that ran out and those of holders that are gone, never a
live server's (:meth:`PostgresInbox.inbox_release`). An event is never claimed while an earlier
pending event of its key remains (leased by another worker or not), so each key's events are
processed in the order they arrived.

Every time is the database's (``now()``, as the recipe leases' in :mod:`core.state.lease`), never
a machine's: a worker whose clock runs ahead would take claims another still holds, and one
running behind would retry a failed event at once or leave a dead worker's claims too long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from core.state.base import InboxEvent, NewEvent
from core.state.inbox_records import (
    EVENT_COLUMNS,
    NEW_EVENT_COLUMNS,
    after_failure,
    event_from_row,
    new_event_row,
)

# The transaction's start on the database's clock, in the epoch seconds the inbox keeps.
_NOW = "extract(epoch FROM now())::float8"

_CLAIM = f"""
SELECT {EVENT_COLUMNS}, {_NOW} + %(lease)s FROM inbox AS e
WHERE recipe = %(recipe)s AND status = 'pending' AND available_at <= {_NOW}
  AND (leased_until IS NULL OR leased_until <= {_NOW})
  AND NOT EXISTS (SELECT 1 FROM inbox AS p WHERE p.recipe = e.recipe
                  AND p.source_key = e.source_key AND p.status = 'pending' AND p.seq < e.seq)
ORDER BY seq LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


class PostgresInbox:
    """The :class:`~core.state.base.InboxStore` methods of the Postgres state store."""

    def _transaction(self, recipe: str | None = None) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _fetchall(self, query: Any, params: Any) -> list[Any]:
        raise NotImplementedError

    def inbox_enqueue(self, events: Sequence[NewEvent]) -> int:
        with self._transaction() as db:
            added = 0
            for e in events:  # one round trip each in a pipeline; rowcount tells a duplicate
                cursor = db.execute(
                    f"INSERT INTO inbox ({NEW_EVENT_COLUMNS}, received_at, available_at)"
                    f" VALUES (%s, %s, %s, %s, %s, %s, {_NOW}, {_NOW})"
                    " ON CONFLICT (recipe, event_id) WHERE event_id IS NOT NULL DO NOTHING",
                    new_event_row(e),
                )
                added += max(cursor.rowcount, 0)
            return added

    def inbox_claim(
        self, recipe: str, limit: int, lease: float, holder: str = ""
    ) -> list[InboxEvent]:
        with self._transaction() as db:
            params = {"recipe": recipe, "lease": lease, "limit": limit}
            rows = db.execute(_CLAIM, params).fetchall()
            if rows:  # until the time the claim read: now() holds still in a transaction
                db.execute(
                    "UPDATE inbox SET leased_until = %s, claimed_by = %s WHERE seq = ANY(%s)",
                    (rows[0][-1], holder, [row[0] for row in rows]),
                )
        return [event_from_row(row) for row in rows]

    def inbox_renew(self, seqs: Sequence[int], holder: str, lease: float) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE inbox SET leased_until = {_NOW} + %s WHERE seq = ANY(%s)"
                " AND claimed_by = %s AND status = 'pending' AND leased_until IS NOT NULL",
                (lease, list(seqs), holder),
            )
            return max(int(cursor.rowcount), 0)

    def inbox_done(self, seqs: Sequence[int]) -> None:
        # The record leaves with the event; the row stays so a redelivery of its id is known.
        with self._transaction() as db:
            db.execute(
                "UPDATE inbox SET status = 'done', record = '{}', leased_until = NULL,"
                f" claimed_by = NULL, available_at = {_NOW}, last_error = NULL"
                " WHERE seq = ANY(%s)",
                (list(seqs),),
            )

    def inbox_failed(
        self,
        failures: Sequence[tuple[int, str]],
        backoff: Callable[[int], float],
        max_attempts: int,
    ) -> None:
        with self._transaction() as db:
            for seq, reason in failures:
                row = db.execute(
                    "SELECT attempts FROM inbox WHERE seq = %s FOR UPDATE", (seq,)
                ).fetchone()
                if row is None:
                    continue
                attempts, status, wait = after_failure(int(row[0]), backoff, max_attempts)
                db.execute(
                    f"UPDATE inbox SET attempts = %s, status = %s, available_at = {_NOW} + %s,"
                    " leased_until = NULL, claimed_by = NULL, last_error = %s WHERE seq = %s",
                    (attempts, status, wait, reason, seq),
                )

    def inbox_release(self, recipe: str, gone: Callable[[str], bool]) -> int:
        with self._transaction() as db:
            holders = db.execute(
                "SELECT DISTINCT coalesce(claimed_by, '') FROM inbox"
                f" WHERE recipe = %s AND leased_until > {_NOW}",
                (recipe,),
            ).fetchall()
            freed = [holder for (holder,) in holders if gone(holder)]
            cursor = db.execute(
                "UPDATE inbox SET leased_until = NULL, claimed_by = NULL"
                " WHERE recipe = %s AND leased_until IS NOT NULL"
                f" AND (leased_until <= {_NOW} OR coalesce(claimed_by, '') = ANY(%s))",
                (recipe, freed),
            )
            return max(int(cursor.rowcount), 0)

    def inbox_events(
        self, recipe: str, statuses: Sequence[str] = ("pending", "failed"), limit: int = 1000
    ) -> list[InboxEvent]:
        rows = self._fetchall(
            f"SELECT {EVENT_COLUMNS}, CASE WHEN leased_until > {_NOW} THEN leased_until END"
            " FROM inbox WHERE recipe = %s AND status = ANY(%s) ORDER BY seq LIMIT %s",
            (recipe, list(statuses), limit),
        )
        return [event_from_row(row) for row in rows]

    def inbox_retry(self, recipe: str) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE inbox SET status = 'pending', attempts = 0, available_at = {_NOW}"
                " WHERE recipe = %s AND (status = 'failed' OR (status = 'pending'"
                f" AND available_at > {_NOW}))",
                (recipe,),
            )
            return max(int(cursor.rowcount), 0)

    def inbox_depth(self) -> dict[tuple[str, str], int]:
        rows = self._fetchall(
            "SELECT recipe, status, count(*) FROM inbox WHERE status != 'done'"
            " GROUP BY recipe, status",
            (),
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def inbox_prune(self, keep: float) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                f"DELETE FROM inbox WHERE status = 'done' AND received_at < {_NOW} - %s", (keep,)
            )
            return max(int(cursor.rowcount), 0)
