"""The thread that writes the inbox for the server's event loop, many events per commit.

A SQLite connection belongs to the thread that opened it, and an event is acknowledged only once
it is committed (synced to disk). One thread owns the connection; what the event loop asks of it
while a commit is running joins the next commit (a group commit), so a burst of deliveries costs
a few syncs, not one per delivery, and the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from core.state import InboxStore, NewEvent, StateStore, inbox_of

T = TypeVar("T")

# The most deliveries one commit takes (more wait for the next: each has its own answer).
_GROUP = 500


@dataclass
class _Job:
    events: list[NewEvent] | None
    call: Callable[[InboxStore], Any] | None
    done: Future[Any]


class StoreThread:
    """Owns one connection to a state store; runs the server's inbox writes and reads on it."""

    def __init__(self, open_store: Callable[[], StateStore], name: str = "inbox-writer") -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._opened: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(open_store,), name=name)
        self._thread.daemon = True
        self._thread.start()
        self._opened.result()  # an unopenable store stops the command before it serves

    async def enqueue(self, events: list[NewEvent]) -> None:
        """Return once ``events`` are committed (raises what the commit raised)."""
        await asyncio.wrap_future(self.submit_events(events))

    def submit_events(self, events: list[NewEvent]) -> Future[None]:
        done: Future[None] = Future()
        self._jobs.put(_Job(events, None, done))
        return done

    async def call(self, function: Callable[[InboxStore], T]) -> T:
        return await asyncio.wrap_future(self.submit(function))

    def submit(self, function: Callable[[InboxStore], T]) -> Future[T]:
        done: Future[T] = Future()
        self._jobs.put(_Job(None, function, done))
        return done

    def close(self) -> None:
        """Finish what was asked, then close the connection."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self, open_store: Callable[[], StateStore]) -> None:
        try:
            store = open_store()
            inbox = inbox_of(store)
        except BaseException as error:
            self._opened.set_exception(error)
            return
        self._opened.set_result(None)
        try:
            while (first := self._jobs.get()) is not None:
                jobs = [first]
                while len(jobs) < _GROUP and not self._jobs.empty():
                    job = self._jobs.get_nowait()
                    if job is None:
                        self._jobs.put(None)  # stop after these
                        break
                    jobs.append(job)
                _write_together(inbox, [job for job in jobs if job.events is not None])
                for job in jobs:
                    if job.call is not None:
                        _settle(job.done, job.call, inbox)
        finally:
            store.close()


def _write_together(inbox: InboxStore, jobs: list[_Job]) -> None:
    if not jobs:
        return
    events = [event for job in jobs for event in job.events or ()]
    try:
        inbox.inbox_enqueue(events)
    except BaseException as error:  # each delivery is answered 503: the service sends it again
        for job in jobs:
            job.done.set_exception(error)
        return
    for job in jobs:
        job.done.set_result(None)


def _settle(done: Future[Any], call: Callable[[InboxStore], Any], inbox: InboxStore) -> None:
    try:
        done.set_result(call(inbox))
    except Exception as error:
        done.set_exception(error)
