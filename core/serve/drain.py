"""The worker that drains one recipe's inbox through the runner, and runs its reconciling poll.

Each claimed batch goes through :meth:`core.runner.Runner.sync`: the recipe's filter, map, sink,
ledger, dead letters and in-flight marks, as in ``connector run``. So an event delivered twice,
or also read by the reconciling poll, ends ``unchanged``: nothing is written twice. An event
leaves the inbox only once its record is in the sink (or needed no write, or was dead-lettered
as invalid); one the sink could not take stays and is tried again later, waiting longer after
each failure, until ``max_attempts`` (then ``connector inbox retry`` sends it again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pluggy

from core.context import Context
from core.errors import ConnectorError
from core.http.redact import redact_text
from core.outcomes import Outcome
from core.recipe import Recipe
from core.report import RunReport
from core.runner import Incoming, Runner
from core.serve.claims import holder
from core.serve.metrics import Metrics
from core.source import Record
from core.state import InboxEvent, InboxStore, StateStore, inbox_of
from core.webhooks import Event, WebhookSource

logger = logging.getLogger(__name__)

#: Done events are remembered this long, so a late redelivery of one is recognised.
KEEP_DONE_SECONDS = 7 * 24 * 3600
_PRUNE_EVERY = 3600.0


@dataclass(frozen=True)
class DrainSettings:
    batch: int = 100  # events per run of the recipe
    #: how long a claim lasts unrenewed: how soon another process takes the events a killed
    #: one had claimed (a restarted server on its machine takes them at once)
    lease_seconds: float = 30.0
    max_attempts: int = 40  # about five hours of retries (1 s doubling to 10 min)
    first_backoff: float = 1.0
    max_backoff: float = 600.0
    idle_poll: float = 1.0  # how often an idle worker looks at the inbox (woken sooner)

    def backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.first_backoff * 2 ** (attempts - 1)))


class Drainer:
    """Drains ``recipe``'s inbox on a thread of its own, with its own state connection."""

    def __init__(
        self,
        recipe: Recipe,
        open_store: Callable[[], StateStore],
        metrics: Metrics,
        *,
        pm: pluggy.PluginManager | None = None,
        settings: DrainSettings | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        self.recipe = recipe
        self.metrics = metrics
        self.pm = pm
        self.settings = settings or DrainSettings()
        self.wake = wake or threading.Event()
        self._open_store = open_store
        self._stop = threading.Event()
        self._every = recipe.model.reconcile.seconds if recipe.model.reconcile else None
        self._thread = threading.Thread(target=self._run, name=f"drain:{recipe.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, then stop; what is still in the inbox waits there."""
        self._stop.set()
        self.wake.set()
        self._thread.join()

    def _run(self) -> None:
        store = self._open_store()
        try:
            inbox = inbox_of(store)
            reconcile_at = time.monotonic()  # a restarted server catches up at once
            prune_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    if time.monotonic() >= prune_at:
                        inbox.inbox_prune(KEEP_DONE_SECONDS)
                        prune_at = time.monotonic() + _PRUNE_EVERY
                    reconcile_at = self._round(store, inbox, reconcile_at)
                except Exception:  # a bug or a broken database: said, then tried again
                    logger.exception("%s: draining the inbox failed", self.recipe.name)
                self.wake.wait(self.settings.idle_poll)
                self.wake.clear()
        finally:
            store.close()

    def _round(self, store: StateStore, inbox: InboxStore, reconcile_at: float) -> float:
        """Drain what is due, then poll if it is time; when the next poll is due."""
        while not self._stop.is_set() and self.drain_once(store, inbox):
            pass
        if self._every is not None and time.monotonic() >= reconcile_at:
            self.reconcile(store)
            return time.monotonic() + self._every
        return reconcile_at

    def drain_once(self, store: StateStore, inbox: InboxStore) -> bool:
        """Claim and process one batch of events; False when none is due."""
        lease = self.settings.lease_seconds
        events = inbox.inbox_claim(self.recipe.name, self.settings.batch, lease, holder())
        if events:
            with self._renewing([event.seq for event in events]):
                self._process(store, inbox, events)
        return bool(events)

    @contextmanager
    def _renewing(self, seqs: list[int]) -> Iterator[None]:
        """Renew the claims on ``seqs`` every third of a lease while the block runs (a batch
        slowed by the sink's rate limit can outlast a lease); on a connection of its own,
        opened only if the batch takes that long."""
        done = threading.Event()
        thread = threading.Thread(
            target=self._renew, args=(seqs, done), name=f"renew:{self.recipe.name}", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _renew(self, seqs: list[int], done: threading.Event) -> None:
        lease = self.settings.lease_seconds
        store: StateStore | None = None
        try:
            while not done.wait(lease / 3):
                store = store or self._open_store()
                inbox_of(store).inbox_renew(seqs, holder(), lease)
        except Exception:  # the claims then run out, and another worker takes the events
            logger.exception(
                "%s: could not renew the claims on %d event(s)", self.recipe.name, len(seqs)
            )
        finally:
            if store is not None:
                store.close()

    def _process(self, store: StateStore, inbox: InboxStore, events: list[InboxEvent]) -> None:
        """Run the recipe over ``events``; then each leaves the inbox or waits to be retried."""
        records, failures, done = self._current_records(store, events)
        # Another server or worker draining this recipe holds its lease for one batch: waited
        # for, not counted as a failed attempt of these events.
        runner = Runner(self.recipe, store, pm=self.pm, wait_for_lock=True)
        try:
            if records:
                self._count(runner.sync(records))
        except ConnectorError as error:  # the sink refused the credential, another run holds it
            logger.warning("%s: events wait in the inbox: %s", self.recipe.name, error)
            reason = redact_text(str(error))
            failures += [(e.seq, reason) for e in events if e.seq not in _seqs(failures, done)]
        else:
            lost = {k for k, outcome in runner.dead_lettered.items() if outcome is Outcome.FAILED}
            why = {problem.key: problem.reason for problem in runner.report.problems}
            for event in events:
                if event.seq in _seqs(failures, done):
                    continue
                if event.key in lost:
                    failures.append((event.seq, _not_taken(why.get(event.key))))
                else:
                    done.append(event.seq)
        inbox.inbox_done(done)
        inbox.inbox_failed(failures, self.settings.backoff, self.settings.max_attempts)
        self.metrics.count("connector_webhook_events_processed_total", self.recipe.name, len(done))
        self.metrics.count("connector_webhook_events_failed_total", self.recipe.name, len(failures))

    def _current_records(
        self, store: StateStore, events: list[InboxEvent]
    ) -> tuple[list[Incoming], list[tuple[int, str]], list[int]]:
        """Each event's record, read again from the API when the recipe says ``refetch``;
        with the events that could not be read now, and those whose object is gone."""
        records: list[Incoming] = []
        failures: list[tuple[int, str]] = []
        gone: list[int] = []
        context = Context(self.recipe.name, self.recipe.base_dir, store)
        source = self.recipe.source_class(self.recipe.source_settings, context)
        assert isinstance(source, WebhookSource)
        try:
            for event in events:
                try:
                    record = _current(source, event)
                except ConnectorError as error:
                    failures.append((event.seq, redact_text(str(error))))
                    continue
                if record is None:
                    gone.append(event.seq)
                else:
                    records.append(Incoming(event.key, record))
        finally:
            source.close()
            context.close()
        return records, failures, gone

    def reconcile(self, store: StateStore) -> RunReport | None:
        """Read the ``reconcile:`` source through the recipe's ledger and sink."""
        runner = Runner(self.recipe.reconciling(), store, pm=self.pm)
        try:
            report = runner.run()
        except ConnectorError as error:
            logger.warning("%s: reconciling poll failed: %s", self.recipe.name, error)
            self.metrics.count("connector_reconcile_runs_total", self.recipe.name, result="failed")
            return None
        self.metrics.count("connector_reconcile_runs_total", self.recipe.name, result="ok")
        self._count(report)
        return report

    def _count(self, report: RunReport) -> None:
        for outcome, n in report.counts.items():
            self.metrics.count("connector_records_total", self.recipe.name, n, outcome=str(outcome))


def _current(source: WebhookSource, event: InboxEvent) -> Record | None:
    if not getattr(source.settings, "refetch", False):
        return event.record
    return source.refetch(
        Event(event.type, event.key, event.record, event.event_id, event.occurred_at)
    )


def _seqs(failures: list[tuple[int, str]], done: list[int]) -> set[int]:
    return {seq for seq, _ in failures} | set(done)


def _not_taken(reason: str | None) -> str:
    """An event's last error when the sink did not take its record: why, where the run says
    (its first problems), else where to look."""
    return (
        f"the sink did not take it: {reason}"
        if reason
        else "the sink did not take it; see connector dlq"
    )
