"""Leases: one run of a recipe at a time across every machine sharing a Postgres state database.

A lease is a row (recipe, holder, host, pid, since, expires_at). Taking it succeeds when there is
none or the one there has expired; a heartbeat thread renews it every third of its length, so a
live run keeps it however long it runs, and a process that dies (SIGKILL, a lost machine) loses it
when it expires. Times are the database's (``now()``), so machines' clocks need not agree.

The lease is also a fence: the state store checks, inside each transaction that records a send
or its answer, that the row still names this holder (and locks it against a takeover until the
commit). A run stalled past its lease (a paused VM, a long GC) that another process took over
stops at its next write instead of sending what the other run is sending.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.env import seconds_setting
from core.errors import FatalError, RunInProgressError
from core.state.pg_connect import shared

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("core.state")

#: How long a lease lasts without renewal (seconds): how soon another machine takes over the
#: recipe of a process that died.
LEASE_SECONDS_VARIABLE = "CONNECTOR_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0
# How often a waiting run looks again (a run that ends gives its lease back at once).
_POLL = 0.5

_TAKE = """
INSERT INTO leases AS l (recipe, holder, host, pid, since, expires_at)
VALUES (%(recipe)s, %(holder)s, %(host)s, %(pid)s, now(),
        now() + make_interval(secs => %(seconds)s))
ON CONFLICT (recipe) DO UPDATE SET holder = excluded.holder, host = excluded.host,
    pid = excluded.pid, since = excluded.since, expires_at = excluded.expires_at
WHERE l.expires_at < now()
RETURNING holder
"""
_HOLDER = """
SELECT host, pid, since, extract(epoch FROM expires_at - now()) FROM leases WHERE recipe = %s
"""
_RENEW = """
UPDATE leases SET expires_at = now() + make_interval(secs => %s)
WHERE recipe = %s AND holder = %s
"""


def lease_seconds() -> float:
    """The length of a lease (``CONNECTOR_LEASE_SECONDS``, default 30)."""
    return seconds_setting(LEASE_SECONDS_VARIABLE, DEFAULT_LEASE_SECONDS, least=1)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as the message to a second run names them."""

    host: str
    pid: int
    since: str
    expires_in: float

    def __str__(self) -> str:
        return (
            f"host {self.host}, process {self.pid}, since {self.since};"
            f" its lease expires in {max(self.expires_in, 0):.0f} s unless renewed"
        )


class Lease:
    """The lease on ``recipe`` for a block (a context manager), on the process's shared
    connections (:func:`~core.state.pg_connect.shared`), never the run's own, so renewals never
    wait for (or join) the run's transactions."""

    def __init__(
        self,
        url: str,
        recipe: str,
        *,
        wait: bool = False,
        on_change: Callable[[str, str | None], None] = lambda recipe, holder: None,
    ) -> None:
        self._recipe = recipe
        self._wait = wait
        self._on_change = on_change
        self._seconds = lease_seconds()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self._db = shared(url)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> None:
        self._take()
        self._on_change(self._recipe, self.holder)
        self._heartbeat = threading.Thread(
            target=self._renew, name=f"lease {self._recipe}", daemon=True
        )
        self._heartbeat.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self._on_change(self._recipe, None)
        try:  # given back at once: the next run need not wait for the expiry
            with self._db.transaction() as db:
                db.execute(
                    "DELETE FROM leases WHERE recipe = %s AND holder = %s",
                    (self._recipe, self.holder),
                )
        except Exception as error:  # the database went away: the lease expires on its own
            logger.warning("could not give back the lease on %s: %s", self._recipe, error)

    def _take(self) -> None:
        told = False
        params = {
            "recipe": self._recipe,
            "holder": self.holder,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "seconds": self._seconds,
        }
        while True:
            with self._db.transaction() as db:
                if db.execute(_TAKE, params).fetchone() is not None:
                    return
                holder = _holder(db, self._recipe)
            if holder is None:
                continue  # given back between the two statements: try again
            if not self._wait:
                msg = (
                    f"another run of {self._recipe} is in progress ({holder}); wait for it to"
                    " finish (or run with --wait): two runs at once could send the same records"
                    " twice"
                )
                raise RunInProgressError(msg)
            if not told:
                logger.warning("waiting for the run of %s held by %s", self._recipe, holder)
                told = True
            time.sleep(min(max(holder.expires_in, 0.1), _POLL))

    def _renew(self) -> None:
        """Renew the lease every third of its length until the block ends; a connection that
        broke (a restarted server, a dropped network) is replaced for the next renewal."""
        while not self._stop.wait(self._seconds / 3):
            try:
                with self._db.transaction() as db:
                    cursor = db.execute(_RENEW, (self._seconds, self._recipe, self.holder))
                    renewed = bool(cursor.rowcount)
            except Exception as error:  # kept trying: the fence stops the run if it is lost
                logger.warning("could not renew the lease on %s: %s", self._recipe, error)
                continue
            if not renewed:
                logger.error("the lease on %s was taken over by another process", self._recipe)
                return


def _holder(db: psycopg.Connection[Any], recipe: str) -> Holder | None:
    row = db.execute(_HOLDER, (recipe,)).fetchone()
    if row is None:
        return None
    since = row[2].isoformat(timespec="seconds")
    return Holder(str(row[0]), int(row[1]), since, float(row[3]))


def lease_lost(recipe: str, where: str) -> FatalError:
    """The error of a run whose lease another process took over."""
    msg = (
        f"the lease on {recipe} in {where} was taken over by another process (this run stalled"
        f" longer than its lease, {LEASE_SECONDS_VARIABLE}); stopping before writing more"
    )
    return FatalError(msg)
