"""Batches in flight: sent in the background, committed strictly in the order they were cut.

While one batch waits for the service's answer, the runner reads, maps and validates the next
(and, when the sink allows it, sends more, up to its ``batches_in_flight``). Whatever a batch
commits (ledger rows, dead letters, cursor) commits only after it and every batch cut before it
were answered, so the cursor never passes a record whose answer is not recorded: a crash leaves
the records of every unanswered batch marked in flight, for the next run to look up.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.outcomes import WriteResult
from core.state import Batch

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Flight(Generic[T]):
    """A cut batch: what commits with it, what the runner needs to read its answer, and the
    answer (None when nothing was sent: progress over records that needed no write)."""

    batch: Batch
    sent: T
    answer: Future[list[WriteResult]] | None = None


Settle = Callable[[Flight[T], list[WriteResult]], None]


class WriteQueue(Generic[T]):
    """Flights in the order they were cut; ``settle`` commits one once it and those before it
    were answered. At most ``depth`` flights wait for an answer at once."""

    def __init__(self, depth: int, settle: Settle[T]) -> None:
        self._depth = max(1, depth)
        self._settle = settle
        self._flights: deque[Flight[T]] = deque()
        self._waiting = 0

    def make_room(self) -> None:
        """Wait until one more batch may be sent, committing what was answered before it (so
        that no commit, and no sink checkpoint, is taken while a later batch is being written
        by a sink that allows one batch at a time)."""
        while self._waiting >= self._depth:
            self._settle_first()
        self._settle_answered()

    def send(self, batch: Batch, sent: T, write: Callable[[], list[WriteResult]]) -> None:
        """Start ``write`` in the background; its batch commits after every earlier one."""
        self.make_room()
        self._flights.append(Flight(batch, sent, in_background(write)))
        self._waiting += 1

    def progress(self, batch: Batch, sent: T) -> None:
        """Commit ``batch`` (nothing to send) as soon as every earlier flight is answered."""
        self._flights.append(Flight(batch, sent))
        self._settle_answered()

    def drain(self) -> None:
        """Wait for every answer and commit everything, in order."""
        while self._flights:
            self._settle_first()

    def abandon(self) -> None:
        """Forget the flights without committing them: their records stay marked in flight."""
        self._flights.clear()
        self._waiting = 0

    def _settle_answered(self) -> None:
        while self._flights and _answered(self._flights[0]):
            self._settle_first()

    def _settle_first(self) -> None:
        flight = self._flights[0]
        results = flight.answer.result() if flight.answer is not None else []
        self._flights.popleft()
        if flight.answer is not None:
            self._waiting -= 1
        self._settle(flight, results)


def _answered(flight: Flight[T]) -> bool:
    return flight.answer is None or flight.answer.done()


def in_background(work: Callable[[], R]) -> Future[R]:
    """Run ``work`` in a daemon thread: an interrupted run exits without waiting for an answer
    (what it sent stays marked in flight, as after a crash)."""
    future: Future[R] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as error:  # handed to whoever waits for the answer
            future.set_exception(error)

    threading.Thread(target=run, name="connector-write", daemon=True).start()
    return future
