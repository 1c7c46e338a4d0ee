"""The state store protocol and the records it keeps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.outcomes import LedgerEntry, Outcome


@dataclass(frozen=True)
class DeadLetter:
    """A record that did not reach the sink, kept with its reason so it can be replayed."""

    key: str
    outcome: Outcome
    reason: str
    field: str | None
    record: dict[str, Any]
    attempts: int = 1
    updated_at: str = ""
    #: The digest of the payload the sink refused (a plain run sends the record again only
    #: when its payload changed; ``dlq retry`` sends it regardless), or of the one left for a
    #: person (``dlq resolve`` records it). None: not sent.
    digest: str | None = None

    @property
    def resolvable(self) -> bool:
        """Left for a person, who handles it in the service by hand (applies a change made
        after it was written that the sink cannot update, adjusts a partial refund, looks for
        a refund in doubt), then ``dlq resolve`` records it as it is: the ledger takes its
        digest. A needs_review kept before the runner kept one for each has none."""
        return self.outcome is Outcome.NEEDS_REVIEW and self.digest is not None


@dataclass(frozen=True)
class InFlight:
    """A record handed to the sink whose answer has not been committed yet.

    Marked (and committed) before the request leaves, cleared in the commit that records the
    sink's answer: one still here when a run starts was sent by a run that stopped before it
    knew what the service did with it. ``sink_ref`` is what the sink needs to look it up.
    """

    key: str
    digest: str
    sink_ref: str | None
    payload: dict[str, Any]
    record: dict[str, Any]
    since: str = ""


@dataclass(frozen=True)
class PairView:
    """What a recipe of a two-way pair last read of one record (see :mod:`core.two_way`).

    ``fields`` is the record as its source sees it, named as a sink writing to that service
    names them; ``modified`` its modification time (ISO, UTC) when the source knows it; ``link``
    the key the paired recipe's source gives the same person or object in the other system;
    ``seen_at`` when the store last recorded a change to it (ISO, UTC; set by the store).
    """

    key: str
    fields: dict[str, Any]
    modified: str | None = None
    link: str | None = None
    seen_at: str = ""


@dataclass
class Batch:
    """Everything that commits together after the sink confirmed a batch.

    ``settled`` are keys whose in-flight marks clear in the same transaction.
    """

    ledger: list[tuple[str, str, str | None, Outcome]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    cursor: Any | None = None
    sink_checkpoint: dict[str, Any] | None = None
    settled: list[str] = field(default_factory=list)
    views: list[PairView] = field(default_factory=list)

    def __bool__(self) -> bool:
        changes = self.ledger or self.dead_letters or self.resolved or self.settled or self.views
        return bool(changes) or self.cursor is not None


#: The run reports kept per recipe: a year and more of hourly runs, a few megabytes.
RUNS_KEPT = 10_000


class StateStore(Protocol):
    """Per-recipe cursors, the ledger and the dead-letter queue.

    ``commit`` is atomic: the cursor, the ledger rows and the dead letters of a batch are saved
    together or not at all, so a crash can never advance the cursor past an unrecorded write.
    """

    location: str

    def cursor(self, recipe: str) -> Any | None: ...

    def sink_checkpoint(self, recipe: str) -> dict[str, Any] | None: ...

    def ledger(self, recipe: str, keys: Iterable[str]) -> dict[str, LedgerEntry]: ...

    def ledger_entries(self, recipe: str) -> list[LedgerEntry]: ...

    def commit(self, recipe: str, batch: Batch) -> None: ...

    def dead_letters(self, recipe: str) -> list[DeadLetter]: ...

    def reset(self, recipe: str) -> None: ...

    def lock(self, recipe: str, *, wait: bool = False) -> AbstractContextManager[None]:
        """Held while ``recipe`` runs; raises :class:`core.errors.RunInProgressError` when
        another process is running it, or with ``wait`` waits for that run to end."""
        ...

    def set_sink_key(self, recipe: str, updates: Sequence[tuple[str, str]]) -> None: ...

    def mark_in_flight(self, recipe: str, items: Sequence[InFlight]) -> None:
        """Record, and commit at once, that ``items`` are about to be sent to the sink."""
        ...

    def in_flight(self, recipe: str) -> list[InFlight]:
        """The records sent whose answer was never committed (a run stopped in between)."""
        ...

    def pair_views(
        self, recipe: str, keys: Iterable[str] = (), links: Iterable[str] = ()
    ) -> list[PairView]:
        """The views ``recipe`` (one of a two-way pair) keeps whose key is one of ``keys`` or
        whose link is one of ``links``; they commit with a batch (``Batch.views``)."""
        ...

    def record_run(self, recipe: str, report: dict[str, Any]) -> None:
        """Keep the report of a run of ``recipe`` (:meth:`core.report.RunReport.to_dict`), and
        only the newest :data:`RUNS_KEPT` of its runs."""
        ...

    def runs(self, recipe: str) -> list[dict[str, Any]]:
        """The reports :meth:`record_run` kept for ``recipe``, oldest first."""
        ...

    def cache_get(self, namespace: str, key: str, max_age_seconds: float) -> Any | None:
        """A JSON value :meth:`cache_put` stored under (``namespace``, ``key``), or None when
        there is none or it is older than ``max_age_seconds``. The cache belongs to no recipe:
        every recipe sharing the state database shares it (a service's reference data)."""
        ...

    def cache_put(self, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under (``namespace``, ``key``), replacing what was there."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class InboxEvent:
    """A verified webhook event kept in the inbox until the recipe's sink has it.

    ``seq`` orders the inbox (arrival order); ``status`` is ``pending`` (to drain, perhaps after
    ``available_at`` when an attempt failed), ``done``, or ``failed`` (gave up after its
    attempts: ``connector inbox retry`` makes it pending again). ``leased_until`` is when the
    claim of a worker holding it ends (None: no claim holds it). Times are the store's clock.
    """

    seq: int
    recipe: str
    type: str
    key: str
    record: dict[str, Any]
    event_id: str | None = None
    occurred_at: str | None = None
    received_at: float = 0.0
    status: str = "pending"
    attempts: int = 0
    available_at: float = 0.0
    last_error: str | None = None
    leased_until: float | None = None


@dataclass(frozen=True)
class NewEvent:
    """An event to enqueue for ``recipe``: what :class:`core.webhooks.Event` holds."""

    recipe: str
    type: str
    key: str
    record: dict[str, Any]
    event_id: str | None = None
    occurred_at: str | None = None


@runtime_checkable
class InboxStore(Protocol):
    """The durable inbox of ``connector serve``: events are committed here before the service
    is answered 2xx, and leave only once the recipe's sink has them (or a person gave up).

    Every method commits before it returns. Times are Unix epoch seconds on the store's own
    clock, which callers never pass: they give lengths of time (a lease, a backoff). A backend
    shared by several machines (Postgres) keeps the database's clock, so their clocks need not
    agree, and makes :meth:`inbox_claim` exclusive (a lease of ``lease`` seconds).
    """

    def inbox_enqueue(self, events: Sequence[NewEvent]) -> int:
        """Commit ``events``, received and due now, in one transaction; an event whose
        (recipe, event id) the inbox already holds is not added again. How many were added."""
        ...

    def inbox_claim(
        self, recipe: str, limit: int, lease: float, holder: str = ""
    ) -> list[InboxEvent]:
        """Up to ``limit`` pending events of ``recipe`` due now, oldest first, leased to
        ``holder`` for ``lease`` seconds: never an event while an earlier pending one of its
        key remains, so the events of one key are processed in the order they arrived."""
        ...

    def inbox_renew(self, seqs: Sequence[int], holder: str, lease: float) -> int:
        """Extend ``holder``'s leases on these events to ``lease`` seconds from now (a batch
        that takes long); how many it still held."""
        ...

    def inbox_done(self, seqs: Sequence[int]) -> None:
        """The sink has these events (or they needed no write): they leave the queue."""
        ...

    def inbox_failed(
        self,
        failures: Sequence[tuple[int, str]],
        backoff: Callable[[int], float],
        max_attempts: int,
    ) -> None:
        """An attempt at each (seq, reason) failed: retried ``backoff(attempts)`` seconds from
        now, or ``failed`` for good once it has had ``max_attempts``."""
        ...

    def inbox_release(self, recipe: str, gone: Callable[[str], bool]) -> int:
        """Drop the leases on ``recipe``'s events that have ended, and those whose holder
        ``gone(holder)`` says holds nothing any more (a killed server's), so they are claimed
        again at once; a live holder's stay. How many were dropped."""
        ...

    def inbox_events(
        self, recipe: str, statuses: Sequence[str] = ("pending", "failed"), limit: int = 1000
    ) -> list[InboxEvent]:
        """``recipe``'s events of these statuses, oldest first."""
        ...

    def inbox_retry(self, recipe: str) -> int:
        """Make ``recipe``'s failed and waiting events due now, attempts reset; how many."""
        ...

    def inbox_depth(self) -> dict[tuple[str, str], int]:
        """How many events are waiting, by (recipe, status) for ``pending`` and ``failed``."""
        ...

    def inbox_prune(self, keep: float) -> int:
        """Forget done events received more than ``keep`` seconds ago; how many."""
        ...
