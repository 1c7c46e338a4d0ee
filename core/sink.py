"""The contract every sink implements: write a batch, report each item's outcome."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from core.outcomes import Outcome, WriteItem, WriteResult
from core.source import NoSettings

if TYPE_CHECKING:
    from core.context import Context
    from core.source import Seen
    from core.state import InFlight


class Sink(ABC):
    """Writes validated payloads to one endpoint of one service.

    ``Model`` validates each mapped payload before it leaves the process (an invalid one is
    dead-lettered with the field); None means any JSON object is accepted. ``supports_update``
    says whether a changed source record can be written again as an update; when it cannot, the
    record ends as ``needs_review``. A recipe whose map never sets a field ``Model`` requires
    (and ``fills`` does not name) is refused when it is loaded.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Model: ClassVar[type[BaseModel] | None] = None
    supports_update: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: True when :meth:`open`, given the checkpoint committed with the last batch, undoes every
    #: write made after it (a file cut back to its committed length): what a stopped run wrote
    #: without recording is gone before anything is written again. Such a sink, unless it
    #: looks records up in :meth:`recover`, needs no in-flight marks, and the runner makes none.
    undoes_uncommitted_writes: ClassVar[bool] = False
    #: Fields ``Model`` requires that :meth:`prepare` fills when the map leaves them out: a
    #: recipe that never maps them is not refused for it.
    fills: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: BaseModel, context: Context) -> None:
        self.settings = settings
        self.context = context

    @property
    def batch_size(self) -> int:
        size = getattr(self.settings, "batch_size", None)
        return int(size) if size else 100

    @property
    def batches_in_flight(self) -> int:
        """How many batches may wait for the service's answer at once (``batches_in_flight``
        setting; default 1: the next batch is read, mapped and validated meanwhile).

        More than one means :meth:`write` runs in several threads at once, so a sink allows it
        only when the service takes concurrent requests and :meth:`checkpoint` is None.
        """
        depth = getattr(self.settings, "batches_in_flight", None)
        return int(depth) if depth else 1

    def minimum_requests(self, records: int) -> int:
        """The fewest requests that could carry ``records`` writes: one per full batch."""
        return math.ceil(records / self.batch_size)

    def prepare(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Complete a mapped payload before validation (fill defaults such as dedup keys)."""
        return payload

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        """Prepare to write, resuming from the checkpoint committed with the last batch.

        A sink that cannot rely on the service to refuse duplicates uses the checkpoint to undo
        what a crashed run wrote after its last commit.
        """

    @abstractmethod
    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        """Write the batch and return one result per item, in any order.

        Raise only for problems of the whole batch (refused credential, unreachable service);
        a record the service rejects is a result with outcome ``invalid``.
        """

    def preview(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        """What :meth:`write` would answer for ``batch``, found without changing anything in the
        service (``connector plan``, ``run --dry-run``): look-ups only, never a write, and only
        where the answer depends on what the service holds (a contact that may match nobody).

        Called without :meth:`open` (a dry run opens nothing: a file sink would cut its file
        back). By default: ``updated`` for a record written before, else ``written``.
        """
        return [
            WriteResult(item.key, Outcome.UPDATED if item.is_update else Outcome.WRITTEN)
            for item in batch
        ]

    def reference(self, item: WriteItem) -> str | None:
        """What :meth:`recover` needs to look ``item`` up in the service (kept with its in-flight
        mark); None when the sink cannot look records up."""
        return None

    def recover(self, stranded: Sequence[InFlight]) -> list[WriteResult]:
        """Find out what became of records a stopped run sent without recording the answer.

        Called once, after :meth:`open`, before anything is sent. Return, for each record:

        - a success (``written``, with the service's id) when the service holds it;
        - ``needs_review`` when it cannot be known and sending it again could do it twice: the
          record is dead-lettered with the reason and never sent again automatically;
        - nothing when it is not there, or when sending it again is safe (the service refuses a
          repeat): it is sent again when the source yields it, as a :class:`WriteItem` with
          ``resent`` set.

        An exception it raises counts as "nothing found" (a :class:`RetriableError`) or stops
        the run: a sink that must not send a record twice answers ``needs_review`` instead.
        By default nothing is looked up: every record is sent again, as before.
        """
        return []

    # --- two-way sync (see core.two_way); a sink that takes part overrides pair_fields ---------

    def pair_fields(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """What writing ``payload`` sets in the service, named and valued as the service's
        source sees them (:class:`core.source.Seen`): only the fields this sink really writes.
        None (the default): this sink cannot take part in a two-way pair."""
        return None

    def pair_target(self, payload: Mapping[str, Any]) -> str | None:
        """The key the service's source gives the record ``payload`` will be written to, when
        the payload alone says (a Mailchimp member's hash of its address); else None."""
        return None

    def pair_key(self, sink_key: str) -> str | None:
        """The key the service's source gives the record this sink reported as ``sink_key``,
        when it can tell; else None."""
        return None

    def pair_current(self, items: Sequence[WriteItem]) -> dict[str, Seen]:
        """The records ``items`` would overwrite, as the service holds them now, by item key
        (one request each, at most): ``conflict: latest`` compares their modification times.
        By default nothing is looked up, and what the pair last read stands in."""
        return {}

    def checkpoint(self) -> dict[str, Any] | None:
        """State to commit together with the batch just written (see :meth:`open`)."""
        return None

    def close(self) -> None:
        """Flush and release resources."""

    def money_day(self, payload: Mapping[str, Any]) -> str | None:
        """The day (``YYYY-MM-DD``) the money of ``payload`` was given, for ``connector
        report``; None (the default): the day of the run."""
        return None

    def funds(self, payload: Mapping[str, Any]) -> list[tuple[str, Decimal]]:
        """How the money of ``payload`` is split among funds or projects, by name, for
        ``connector report``; by default none (all of it undesignated)."""
        return []

    @classmethod
    def pending(cls, sink_key: str | None) -> bool:
        """Whether a record written as ``sink_key`` waits in the service's queue (Virtuous's
        import) rather than being the record itself yet; by default never."""
        return False

    def money(self, payload: Mapping[str, Any]) -> tuple[str, Decimal] | None:
        """The (currency, amount) a written payload moved, for the run's money totals.

        By default read from ``amount`` and ``currencyCode`` or ``currency``; sinks whose payloads
        carry money elsewhere override it.
        """
        amount = payload.get("amount")
        if amount is None or isinstance(amount, bool):
            return None
        currency = payload.get("currencyCode") or payload.get("currency") or ""
        if amount.__class__ is Decimal:  # a mapped amount, as minor_to_major gives it
            return str(currency).upper(), amount
        try:
            return str(currency).upper(), Decimal(str(amount))
        except InvalidOperation:
            return None
