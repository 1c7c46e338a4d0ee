"""Run a recipe: read -> filter -> map -> validate -> write in batches -> commit state.

Every record ends with an :class:`~core.outcomes.Outcome`. The ledger decides between a first
write, an update and nothing at all, so re-running a recipe never writes a record twice. After
the sink confirms a batch, its ledger rows, dead letters, cursor and sink checkpoint commit in
one transaction: a crash at any point loses nothing and doubles nothing.

A batch holds ``batch_size`` records that will really be sent: records that need no write
(unchanged, filtered, dead-lettered, or refused before and unchanged since: those wait for
``dlq retry``) commit with the batch that follows them, or alone every few thousand records read
or minutes, as far as the first record still to send, so the cursor never passes an unsent
record. While a batch is in flight the next is read, mapped and validated (see
:mod:`core.pipeline`); commits keep the order the batches were cut in.

Before a batch is sent its records are marked in flight (committed before the request leaves);
the marks clear in the commit that records the sink's answer. A run that finds marks left by a
stopped run asks the sink to :meth:`~core.sink.Sink.recover` those records before sending
anything, so a record the service already holds is recorded, not sent a second time.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pluggy
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from core.context import Context
from core.digest import payload_digest
from core.errors import InvalidRecord, RetriableError, SkippableError
from core.http.redact import redact_text
from core.mapping import FILTERED
from core.outcomes import LedgerEntry, Outcome, WriteItem, WriteResult
from core.pipeline import Flight, WriteQueue
from core.recipe import Recipe, error_text
from core.report import RunReport
from core.sink import Sink
from core.source import Record, Source, Unreadable
from core.state import Batch, DeadLetter, InFlight, StateStore
from core.two_way import Pairing, Verdict

logger = logging.getLogger(__name__)

# Dead letters held before they are committed, with whatever records are pending.
_DEAD_LETTERS_HELD = 1000

# Records read, mapped and validated before their ledger rows are looked up at once (at most;
# a batch's worth when batches are smaller).
_LOOKAHEAD = 500

# Progress over records that need no write (unchanged, filtered, dead-lettered) commits at least
# this often, so a long stretch of them is not read again after a crash.
_PROGRESS_RECORDS = 5000
_PROGRESS_SECONDS = 120.0

#: The field that holds an input the source could not parse, in its dead letter.
UNREADABLE = "raw"

# The sink's answers whose dead letter keeps the payload's digest: an invalid one waits for a
# change (or `dlq retry`); one left for a person is recorded as it is by `dlq resolve`.
_DIGEST_KEPT = frozenset({Outcome.INVALID, Outcome.NEEDS_REVIEW})


@dataclass(slots=True)
class _Candidate:
    key: str
    record: Record
    payload: dict[str, Any]
    digest: str
    #: a two-way recipe's judgement of it (see core.two_way)
    verdict: Verdict | None = None


@dataclass(slots=True)
class _Read:
    """One record read and prepared: what to send (``candidate``), its dead letter, or neither
    (filtered); ``cursor`` is the run's cursor once it is settled."""

    cursor: Any
    candidate: _Candidate | None = None
    letter: DeadLetter | None = None


@dataclass
class _Cut:
    """Records read since the last cut, to commit with the batch that ends it.

    ``head`` is what precedes the first record to send: progress that may commit alone (the
    cursor passes no unsent record). ``tail`` is the rest; it commits with ``items``.
    """

    head: Batch
    tail: Batch
    items: list[WriteItem]
    by_key: dict[str, _Candidate]
    since: float  # when the first of ``items`` joined (monotonic)

    @classmethod
    def empty(cls) -> _Cut:
        return cls(Batch(), Batch(), [], {}, 0.0)

    @property
    def open(self) -> Batch:
        """Where what is read now goes."""
        return self.tail if self.items else self.head

    def whole(self) -> Batch:
        merged = Batch(
            ledger=self.head.ledger + self.tail.ledger,
            dead_letters=self.head.dead_letters + self.tail.dead_letters,
            resolved=self.head.resolved + self.tail.resolved,
            settled=self.head.settled + self.tail.settled,
            views=self.head.views + self.tail.views,
        )
        merged.cursor = self.tail.cursor if self.tail.cursor is not None else self.head.cursor
        return merged


@dataclass(slots=True)  # not frozen: a frozen dataclass takes three times as long to build
class Incoming:
    """A source record with its key and cursor value."""

    key: str
    record: Record
    cursor: Any | None = None
    unreadable: str | None = None


class Runner:
    """Runs one recipe once. Build a new one for each run."""

    def __init__(
        self,
        recipe: Recipe,
        state: StateStore,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        pm: pluggy.PluginManager | None = None,
        on_progress: Callable[[RunReport], None] | None = None,
        on_wait: Callable[[str], None] | None = None,
        wait_for_lock: bool = False,
        show: int = 0,
        locked: bool = False,
    ) -> None:
        self.recipe = recipe
        #: the caller holds the recipe's lock already (``connector worker`` takes it to check,
        #: under it, that a scheduled run is still due)
        self.locked = locked
        #: a dry run keeps the first ``show`` payloads it would send, in :attr:`payloads`
        self.show = show
        self.payloads: list[dict[str, Any]] = []
        self.wait_for_lock = wait_for_lock
        self.state = state
        self.dry_run = dry_run
        self.limit = limit
        self.pm = pm
        self.on_progress = on_progress or (lambda report: None)
        self.report = RunReport(recipe=recipe.name, dry_run=dry_run, state=state.location)
        self._unreadable_seen: set[str] = set()
        # Left in flight by a stopped run: sent again marked ``resent`` (the sink could not tell
        # whether the service holds them), held back (sending again could do it twice), or
        # found in the service (counted when recovered, not again when read).
        self._resent: set[str] = set()
        self._held: dict[str, str] = {}
        self._recovered: set[str] = set()
        # Keys that hold a dead letter, and the digests of payloads the sink refused.
        self._lettered: set[str] = set()
        self._refused: dict[str, str] = {}
        #: The keys dead-lettered by this run, with why (a failed write may be tried again).
        self.dead_lettered: dict[str, Outcome] = {}
        self._replaying = False
        self._source: Source | None = None
        # Keys sent (or about to be) whose answer is not committed yet, with their digests.
        self._open_keys: dict[str, str] = {}
        self._sent = 0  # records handed to the sink
        self._pairing: Pairing | None = None
        self._cut = _Cut.empty()
        self._planned = 0
        self._committed_at = (0, time.monotonic())
        self._paths = recipe.missing_paths()
        waiting = on_wait or self.report.note_wait
        self.context = Context(recipe.name, recipe.base_dir, state, on_wait=waiting)
        # The sink's own, so that the requests it sends (the run's spending of the service's
        # budget) are counted apart from the source's.
        self._sink_context = Context(recipe.name, recipe.base_dir, state, on_wait=waiting)

    def run(self) -> RunReport:
        """Read the source from the committed cursor and sync every record."""
        with self._exclusive():
            source = self._source = self.recipe.source_class(
                self.recipe.source_settings, self.context
            )
            try:
                cursor = self.state.cursor(self.recipe.name)
                records = _incoming(source, source.read(cursor))
                finished = self._sync(records, cursor, advance_cursor=True)
                end = source.end_cursor() if finished else None
                if end is not None and not self.dry_run:
                    self.state.commit(self.recipe.name, Batch(cursor=end))
                if finished and cursor is None and not self.dry_run:
                    self._forget_fixed_inputs()
            finally:
                source.close()
        return self.report

    def expected(self) -> int | None:
        """How many records this run will read, when the source or ``--limit`` says."""
        total = self._source.total if self._source is not None else None
        if self.limit is None or total is None:
            return total if total is not None else self.limit
        return min(total, self.limit)

    def replay(self) -> RunReport:
        """Send the dead-lettered records through the current recipe again (``dlq retry``)."""
        with self._exclusive():
            letters = self.state.dead_letters(self.recipe.name)
            records = (_replayed(d) for d in letters)
            self._sync(records, None, advance_cursor=False, letters=letters)
        return self.report

    def sync(self, records: Iterable[Incoming]) -> RunReport:
        """Sync records handed over rather than read (the events of ``connector serve``'s
        inbox): the same filter, map, ledger, dead letters and sink as :meth:`run`, and no
        cursor. :attr:`dead_lettered` then says which of them did not reach the sink."""
        with self._exclusive():
            self._sync(iter(records), None, advance_cursor=False, replaying=False, keep=False)
        return self.report

    def _forget_fixed_inputs(self) -> None:
        """After a read of the whole source, an unparsable input it no longer yields was fixed
        (its record, now readable, went through under its own key) or removed."""
        fixed = [
            letter.key
            for letter in self.state.dead_letters(self.recipe.name)
            if _unparsed(letter) and letter.key not in self._unreadable_seen
        ]
        if fixed:
            self.state.commit(self.recipe.name, Batch(resolved=fixed))

    def _exclusive(self) -> AbstractContextManager[None]:
        """The recipe's lock; a dry run writes nothing, so it may look alongside a real run."""
        if self.dry_run or self.locked:
            return nullcontext()
        if self.wait_for_lock:  # asked only then: a store may implement lock(recipe) alone
            return self.state.lock(self.recipe.name, wait=True)
        return self.state.lock(self.recipe.name)

    def _sync(
        self,
        records: Iterator[Incoming],
        cursor: Any,
        *,
        advance_cursor: bool,
        letters: list[DeadLetter] | None = None,
        replaying: bool | None = None,
        keep: bool = True,
    ) -> bool:
        """Sync ``records``; True when the source was read to its end (no ``--limit`` cut).
        ``replaying`` (by default: when no cursor advances) sends refused payloads again;
        ``keep``: the report is kept in the state store (not for each drain of an inbox)."""
        sink = self.recipe.sink_class(self.recipe.sink_settings, self._sink_context)
        self._sink = sink
        self._replaying = not advance_cursor if replaying is None else replaying
        self._pairing = self._paired(sink)
        try:
            records = _started(records)
            if letters is None:
                letters = self.state.dead_letters(self.recipe.name)
            self._know_dead_letters(letters)
            if not self.dry_run:
                self._open(sink)
            return self._loop(sink, records, cursor, advance_cursor)
        finally:
            try:
                sink.close()
            finally:
                self._sink_context.close()
                self.context.close()
                self.report.requests_sent = self._sink_context.requests_sent
                self.report.requests_minimum = sink.minimum_requests(self._sent)
                self.report.missing_paths = self._paths.report()
                self.report.finish()
                if keep and not self.dry_run:
                    self._keep_report()
                if self.pm is not None:
                    self.pm.hook.connector_after_run(
                        recipe=self.recipe.name, report=self.report.to_dict()
                    )

    def _keep_report(self) -> None:
        """Keep the run's report for ``connector report``; failing to is no reason to stop.
        Called while the run ends, by an error too: the report kept says why it stopped."""
        error = sys.exception()
        if error is not None and self.report.stopped is None:
            stopped = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
            self.report.stopped = redact_text(stopped) or type(error).__name__
        try:
            self.state.record_run(self.recipe.name, self.report.to_dict())
        except Exception as error:  # the store failed (the run is stopping for it, maybe)
            logger.warning("%s: the run's report was not kept: %s", self.recipe.name, error)

    def _paired(self, sink: Sink) -> Pairing | None:
        pair = self.recipe.pair
        if pair is None:
            return None
        source = self.recipe.source_class(self.recipe.source_settings, self.context)
        return Pairing(self.recipe.name, pair, self.state, source, sink)

    def _know_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        """Which keys hold a dead letter (only they need one cleared), and the payloads the sink
        refused: sent again unchanged they would be refused again, so a plain run waits for
        ``dlq retry`` or a changed payload."""
        for letter in letters:
            self._lettered.add(letter.key)
            if letter.digest is not None and letter.outcome is Outcome.INVALID:
                self._refused[letter.key] = letter.digest

    def _open(self, sink: Sink) -> None:
        checkpoint = self.state.sink_checkpoint(self.recipe.name)
        sink.open(checkpoint)
        if checkpoint is None:
            # Commit the opening checkpoint before the first write, so a crash during the
            # first batch can be undone too.
            opening = sink.checkpoint()
            if opening is not None:
                self.state.commit(self.recipe.name, Batch(sink_checkpoint=opening))
        self._recover(sink)

    def _recover(self, sink: Sink) -> None:
        """Settle what a stopped run sent without recording the answer, before sending more."""
        stranded = {item.key: item for item in self.state.in_flight(self.recipe.name)}
        if not stranded:
            return
        logger.info(
            "%s: %d record(s) were in flight when a run stopped", self.recipe.name, len(stranded)
        )
        try:
            results = sink.recover(list(stranded.values()))
        except RetriableError as error:  # the service cannot say now: send again, as before
            logger.warning("%s: could not look up records in flight: %s", self.recipe.name, error)
            results = []
        batch = Batch()
        written: list[tuple[Outcome, dict[str, Any]]] = []
        for result in results:
            item = stranded.pop(result.key, None)
            if item is None:
                continue
            if result.outcome.succeeded:
                batch.ledger.append((item.key, item.digest, result.sink_key, Outcome.WRITTEN))
                self._resolve(batch, item.key)
                batch.settled.append(item.key)
                self._recovered.add(item.key)
                written.append((Outcome.WRITTEN, item.payload))
            else:
                reason = result.reason or f"{sink.name} cannot tell whether it was written"
                self._held[item.key] = reason
                # what was sent: `dlq resolve` records it once a person has checked the service
                digest = item.digest if result.outcome is Outcome.NEEDS_REVIEW else None
                self._dead_letter(
                    batch, item.key, item.record, result.outcome, reason, digest=digest
                )
        self._count_writes(written)
        self._resent = set(stranded)
        if batch:
            self.state.commit(self.recipe.name, batch)

    def _loop(
        self, sink: Sink, records: Iterator[Incoming], cursor: Any, advance_cursor: bool
    ) -> bool:
        self._writes = WriteQueue(sink.batches_in_flight, self._settle)
        self._marking = _needs_marks(sink)
        # The compiled map itself, two calls fewer per record (a recipe without map: passes
        # records through, which Recipe.apply does).
        mapped_by = self.recipe.mapping.function if self.recipe.model.map is not None else None
        self._apply = mapped_by or self.recipe.apply
        self._batch_size = sink.batch_size  # read once: a property, asked after every record
        # Taken a batch at a time, so the next batch is read while one is in flight.
        lookahead = min(_LOOKAHEAD, self._batch_size)
        finished = True
        reads: list[_Read] = []
        report, prepare, on_progress = self.report, self._prepare, self.on_progress
        try:
            for incoming in records:
                if self.limit is not None and report.records_read >= self.limit:
                    finished = False
                    break
                report.records_read += 1
                if advance_cursor and incoming.cursor is not None:
                    cursor = incoming.cursor if cursor is None else max(cursor, incoming.cursor)
                reads.append(prepare(incoming, sink, cursor if advance_cursor else None))
                if len(reads) >= lookahead:
                    self._plan(sink, reads)
                    reads = []
                on_progress(report)
            self._plan(sink, reads)
            self._send_cut(sink)
            self._writes.drain()
        except Exception:
            self._keep_what_was_answered()
            raise
        except BaseException:  # interrupted: what is in flight stays marked for the next run
            self._writes.abandon()
            raise
        self.on_progress(self.report)
        return finished

    def _keep_what_was_answered(self) -> None:
        """After a failure, commit the batches the service answered, in order, up to the first
        that failed; the rest stay marked in flight."""
        try:
            self._writes.drain()
        except Exception as error:  # the failure being raised, or one of its kind
            logger.debug("%s: a batch in flight failed too: %s", self.recipe.name, error)
            self._writes.abandon()

    def _prepare(self, incoming: Incoming, sink: Sink, cursor: Any) -> _Read:
        """Filter, map and validate one record; dead-letter it when that fails."""
        read = _Read(cursor)
        if incoming.unreadable is not None:
            self._unreadable_seen.add(incoming.key)
            read.letter = self._letter(
                incoming.key, incoming.record, Outcome.INVALID, incoming.unreadable
            )
            return read
        try:
            mapped = self._apply(incoming.record)
            if self._paths.pending:
                self._paths.observe(incoming.record, mapped is not FILTERED)
            if mapped is FILTERED:
                self.report.count(Outcome.FILTERED)
                return read
            assert isinstance(mapped, dict)
            payload = validate_payload(
                sink, sink.prepare(incoming.key, mapped), self.recipe.expression_at
            )
        except SkippableError as error:
            read.letter = self._letter(incoming.key, incoming.record, error.outcome, error)
            return read
        read.candidate = _Candidate(incoming.key, incoming.record, payload, payload_digest(payload))
        return read

    def _plan(self, sink: Sink, reads: list[_Read]) -> None:
        """Look up the ledger rows of ``reads`` at once, then take each in order: what must be
        sent joins the cut, which is sent when it holds ``batch_size`` such records."""
        keys = [read.candidate.key for read in reads if read.candidate is not None]
        known = self.state.ledger(self.recipe.name, keys) if keys else {}
        if self._pairing is not None and keys:
            self._judge(self._pairing, reads, known)
        # Rows that may change before their record is taken: records of these keys are sent.
        stale = {key for key in keys if key in self._open_keys}
        classify, cut_when_due = self._classify, self._cut_when_due
        for read in reads:
            if read.letter is not None:
                self._cut.open.dead_letters.append(read.letter)
            elif read.candidate is not None:
                classify(sink, read.candidate, known, stale)
            self._cut.open.cursor = read.cursor
            self._planned += 1
            cut_when_due(sink)

    def _judge(self, pairing: Pairing, reads: list[_Read], known: dict[str, LedgerEntry]) -> None:
        """Two-way: take the other side's values of the fields it owns, and find the echoes."""
        candidates = [read.candidate for read in reads if read.candidate is not None]
        verdicts = pairing.judge(candidates, known, payload_digest)
        for candidate in candidates:
            verdict = candidate.verdict = verdicts.get(candidate.key)
            if verdict is not None and verdict.payload is not candidate.payload:
                candidate.payload = verdict.payload
                candidate.digest = payload_digest(verdict.payload)

    def _classify(
        self, sink: Sink, candidate: _Candidate, known: dict[str, LedgerEntry], stale: set[str]
    ) -> None:
        key = candidate.key
        earlier = self._open_keys.get(key)
        if earlier == candidate.digest:
            self.report.count(Outcome.UNCHANGED)  # the input holds the record twice
            return
        if key in stale:
            # Read again after it was sent in this run: wait for that answer to be recorded
            # (sending what is cut so far), then read its ledger row again, so that this one
            # is unchanged or an update of it.
            if earlier is not None:
                self._send_cut(sink)
                self._writes.drain()
            known.pop(key, None)
            known.update(self.state.ledger(self.recipe.name, [key]))
            stale.discard(key)
        if key in self._held:
            return  # dead-lettered (and counted) when recovered: never sent again
        previous = known.get(key)
        verdict = candidate.verdict
        if verdict is not None and verdict.changed:
            self._cut.open.views.append(verdict.view)
        resend = verdict is not None and verdict.resend
        if previous is not None and previous.payload_hash == candidate.digest and not resend:
            if key not in self._recovered:  # else counted as written already
                self.report.count(Outcome.UNCHANGED)
            if key in self._lettered:
                self._resolve(self._cut.open, key)
        elif verdict is not None and verdict.echo:
            self.report.count(Outcome.ECHO)  # the other side holds it already: nothing to send
            self._cut.open.ledger.append((key, candidate.digest, None, Outcome.ECHO))
            self._resolve(self._cut.open, key)
        elif not self._replaying and self._refused.get(key) == candidate.digest:
            self.report.dead_letters_waiting += 1  # refused as it is: `dlq retry` sends it
        elif previous is not None and not sink.supports_update:
            reason = (
                f"changed since it was written ({_sink_ref(previous)}); {sink.name}"
                " cannot update, so a person must apply the change, then `connector dlq resolve`"
                " it"
            )
            self.report.to_apply += 1
            # the digest of the change: `dlq resolve` records it as applied
            self._dead_letter(
                self._cut.open,
                key,
                candidate.record,
                Outcome.NEEDS_REVIEW,
                reason,
                digest=candidate.digest,
            )
        else:
            self._join(candidate, previous)
            stale.add(key)

    def _join(self, candidate: _Candidate, previous: LedgerEntry | None) -> None:
        cut = self._cut
        if not cut.items:
            cut.since = time.monotonic()
        resent = candidate.key in self._resent
        cut.items.append(WriteItem(candidate.key, candidate.payload, previous, resent))
        cut.by_key[candidate.key] = candidate
        self._open_keys[candidate.key] = candidate.digest

    def _cut_when_due(self, sink: Sink) -> None:
        """Send the cut once it holds a full batch (or too many dead letters, or has waited
        too long for a slow source); commit the progress before its first record to send
        every few thousand records read or minutes."""
        cut = self._cut
        if len(cut.items) >= self._batch_size or len(cut.tail.dead_letters) >= _DEAD_LETTERS_HELD:
            self._send_cut(sink)
            return
        now = time.monotonic()
        if cut.items and now - cut.since >= _PROGRESS_SECONDS:
            self._send_cut(sink)
            return
        records, at = self._committed_at
        if (
            len(cut.head.dead_letters) >= _DEAD_LETTERS_HELD
            or self._planned - records >= _PROGRESS_RECORDS
            or now - at >= _PROGRESS_SECONDS
        ):
            head, cut.head = cut.head, Batch()
            self._committed_at = (self._planned, now)
            if head:
                self._writes.progress(head, {})

    def _send_cut(self, sink: Sink) -> None:
        """Send the records of the cut as one batch; what it settled commits with its answer."""
        cut, self._cut = self._cut, _Cut.empty()
        batch = cut.whole()
        self._committed_at = (self._planned, time.monotonic())
        if not cut.items:
            if batch:
                self._writes.progress(batch, {})
            return
        self._sent += len(cut.items)
        if self.dry_run:
            self._preview(sink, cut, batch)
            return
        self._writes.make_room()  # marked in flight only when its request may leave
        if self._marking:
            self._mark_in_flight(sink, cut.items, cut.by_key)
        items = cut.items
        self._writes.send(batch, cut.by_key, lambda: self._write(sink, items))

    def _preview(self, sink: Sink, cut: _Cut, batch: Batch) -> None:
        """A dry run: the sink says what it would answer (looking, never writing), and that
        answer is recorded as a real one would be, in a batch that is never committed."""
        room = self.show - len(self.payloads)
        self.payloads.extend(item.payload for item in cut.items[: max(room, 0)])
        self._record_results(batch, dict(cut.by_key), sink.preview(cut.items))
        for item in cut.items:
            self._open_keys.pop(item.key, None)

    def _settle(self, flight: Flight[dict[str, _Candidate]], results: list[WriteResult]) -> None:
        """Record a batch's answer and commit it (its cursor, ledger rows and dead letters)."""
        batch, by_key = flight.batch, flight.sent
        for key in by_key:
            self._open_keys.pop(key, None)
        if flight.answer is not None:
            self._record_results(batch, by_key, results)
            self.report.waiting = None
        if self.dry_run or not batch:
            return
        batch.sink_checkpoint = self._sink.checkpoint()
        self.state.commit(self.recipe.name, batch)
        logger.info(
            "%s: committed %d written, %d dead-lettered, cursor %s",
            self.recipe.name,
            len(batch.ledger),
            len(batch.dead_letters),
            batch.cursor,
        )

    def _mark_in_flight(
        self, sink: Sink, items: list[WriteItem], by_key: dict[str, _Candidate]
    ) -> None:
        """Commit, before the request leaves, that these records are being sent."""
        marks = [
            InFlight(
                item.key,
                by_key[item.key].digest,
                sink.reference(item),
                item.payload,
                by_key[item.key].record,
            )
            for item in items
        ]
        self.state.mark_in_flight(self.recipe.name, marks)

    def _write(self, sink: Sink, items: list[WriteItem]) -> list[WriteResult]:
        try:
            return sink.write(items)
        except RetriableError as error:
            reason = f"{sink.name} kept failing after retries: {error}"
            return [WriteResult(item.key, Outcome.FAILED, reason=reason) for item in items]

    def _record_results(
        self, batch: Batch, by_key: dict[str, _Candidate], results: list[WriteResult]
    ) -> None:
        written: list[tuple[Outcome, dict[str, Any]]] = []
        for result in results:
            candidate = by_key.pop(result.key, None)
            if candidate is None:
                continue
            if (self._marking or result.key in self._resent) and (
                result.outcome is not Outcome.FAILED or not result.maybe_sent
            ):
                # The sink knows what became of it; a failed one may have arrived, so its mark
                # stays and the next run (or `dlq retry`) asks the sink before sending it again.
                batch.settled.append(result.key)
                self._resent.discard(result.key)
            if result.outcome.succeeded:
                # UNCHANGED: the sink held it already (another state sent it), as the run counts
                batch.ledger.append((result.key, candidate.digest, result.sink_key, result.outcome))
                if result.key in self._lettered:
                    self._resolve(batch, result.key)
                if candidate.verdict is not None:
                    self._link(batch, candidate, result.sink_key)
                written.append((result.outcome, candidate.payload))
            else:
                reason = result.reason or f"{self.recipe.sink_class.name} rejected it"
                # Refused as invalid, the same payload would be refused again: remember it. One
                # left for a person keeps it too, for `dlq resolve` to record once handled.
                refused = candidate.digest if result.outcome in _DIGEST_KEPT else None
                self._dead_letter(
                    batch,
                    result.key,
                    candidate.record,
                    result.outcome,
                    reason,
                    result.field,
                    refused,
                )
        for key, candidate in by_key.items():
            reason = f"{self.recipe.sink_class.name} reported no outcome for this record"
            self._dead_letter(batch, key, candidate.record, Outcome.FAILED, reason)
        self._count_writes(written)

    def _link(self, batch: Batch, candidate: _Candidate, sink_key: str | None) -> None:
        """Two-way: remember which record of the other system this one was written to."""
        if candidate.verdict is None or self._pairing is None:
            return
        linked = self._pairing.linked(candidate.verdict.view, sink_key)
        if linked is not None:
            batch.views.append(linked)

    def _count_writes(self, written: list[tuple[Outcome, dict[str, Any]]]) -> None:
        """Count the records a batch wrote, with the money they moved: once per batch, the
        undesignated gifts summed by day and currency before they join the report's totals."""
        self.report.counts.update(outcome for outcome, _ in written)
        if self.recipe.model.map is None:
            return  # records passed through as read: an amount may be in cents, or no money
        sink, today = self._sink, self.report.started_at[:10]
        undesignated: dict[tuple[str, str], list[Decimal]] = {}
        for outcome, payload in written:
            if outcome is not Outcome.WRITTEN and outcome is not Outcome.UPDATED:
                continue  # the sink already held it (a duplicate it refused): no money moved now
            money = sink.money(payload)
            if money is None:
                continue
            day = sink.money_day(payload) or today
            splits = sink.funds(payload)
            if splits:
                self.report.add_money(*money)
                self.report.add_money_detail(day, *money, splits)
            else:
                undesignated.setdefault((day, money[0]), []).append(money[1])
        for (day, currency), amounts in undesignated.items():
            self.report.add_undesignated(day, currency, amounts)

    def _resolve(self, batch: Batch, key: str) -> None:
        """Clear the dead letter of a record that went through (only when it has one)."""
        if key in self._lettered:
            batch.resolved.append(key)
            self._lettered.discard(key)
            self._refused.pop(key, None)

    def _dead_letter(
        self,
        batch: Batch,
        key: str,
        record: Record,
        outcome: Outcome | str,
        reason: SkippableError | str,
        field: str | None = None,
        digest: str | None = None,
    ) -> None:
        batch.dead_letters.append(self._letter(key, record, outcome, reason, field, digest))

    def _letter(
        self,
        key: str,
        record: Record,
        outcome: Outcome | str,
        reason: SkippableError | str,
        field: str | None = None,
        digest: str | None = None,
    ) -> DeadLetter:
        """A dead letter, counted, reported and announced; ``digest`` is the refused payload's."""
        if isinstance(reason, SkippableError):
            field, reason = reason.field, reason.message
        # A reason may quote an expression or a server's answer that holds a ${VAR} secret.
        reason = redact_text(reason)
        outcome = Outcome(outcome)
        self.dead_lettered[key] = outcome
        self.report.count(outcome)
        self.report.add_problem(key, outcome, reason, field)
        self._lettered.add(key)
        if digest is None or outcome is not Outcome.INVALID:
            self._refused.pop(key, None)
        else:
            self._refused[key] = digest
        if self.pm is not None and not self.dry_run:
            self.pm.hook.connector_record_dead_lettered(
                recipe=self.recipe.name, key=key, reason=reason, field=field
            )
        return DeadLetter(key, outcome, reason, field, record, digest=digest)


def _incoming(source: Source, records: Iterable[Record | Unreadable]) -> Iterator[Incoming]:
    key_of, cursor_of = source.key, source.cursor_value  # looked up once, not per record
    for record in records:
        if isinstance(record, Unreadable):
            yield Incoming(record.key, {UNREADABLE: record.raw}, unreadable=record.reason)
            continue
        try:
            key = key_of(record)
        except (KeyError, TypeError, ValueError):
            # Without a key the record cannot be tracked; hashing it keeps re-runs idempotent.
            key = "sha256:" + payload_digest(record)[:32]
        yield Incoming(key, record, cursor_of(record))


def _needs_marks(sink: Sink) -> bool:
    """In-flight marks tell the next run what to look up before sending again; a sink that
    undoes its uncommitted writes when it opens, and looks nothing up, has no use for them."""
    return not sink.undoes_uncommitted_writes or type(sink).recover is not Sink.recover


def _started(records: Iterator[Incoming]) -> Iterator[Incoming]:
    """``records`` with the first one already read, so that a missing input or a refused
    credential stops the run before the sink has opened (and created) anything."""
    first = next(records, None)
    return records if first is None else itertools.chain([first], records)


def _unparsed(letter: DeadLetter) -> bool:
    return set(letter.record) == {UNREADABLE}


def _replayed(letter: DeadLetter) -> Incoming:
    """A dead letter as input again. One the source could not parse stays dead-lettered: only
    fixing the input and running the recipe again can read it."""
    if _unparsed(letter):
        reason = f"{letter.reason} (fix the input, then run the recipe again)"
        return Incoming(letter.key, letter.record, unreadable=reason)
    return Incoming(letter.key, letter.record)


def validate_payload(
    sink: Sink | type[Sink],
    payload: dict[str, Any],
    expression_at: Callable[[tuple[str | int, ...]], str | None] | None = None,
) -> dict[str, Any]:
    """Check a mapped payload against the sink's model; return what will be sent.

    ``expression_at`` finds the recipe's expression for a field, so that a message about a null
    value can say which expression gave it.
    """
    if sink.Model is None:
        return payload
    try:
        model = sink.Model.model_validate(payload)
    except ValidationError as error:
        problems = error.errors()
        first = problems[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        msg = _explain(first, expression_at)
        if len(problems) > 1:
            msg += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        raise InvalidRecord(msg, field=field) from None
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _explain(
    problem: ErrorDetails, expression_at: Callable[[tuple[str | int, ...]], str | None] | None
) -> str:
    """Pydantic's message, said in the recipe's terms when the mapping gave nothing."""
    if problem["type"] == "missing":
        return "required, but the recipe's map: does not set it"
    if problem.get("input", ...) is not None:
        return error_text(problem)
    expression = expression_at(tuple(problem["loc"])) if expression_at else None
    given = f"'{expression}' gave null" if expression else "the mapped value is null"
    # The usual cause: the source record lacks the field the expression reads.
    return f"a value is required, but {given} (is the source field missing?)"


def _sink_ref(entry: LedgerEntry) -> str:
    return f"sink id {entry.sink_key}" if entry.sink_key else f"at {entry.updated_at}"
