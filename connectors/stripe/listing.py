"""Reading a Stripe list endpoint incrementally by ``created``, oldest first.

Stripe lists newest first, but the runner commits the highest cursor value of each batch, so a
source that yielded in Stripe's order could commit a cursor past records it has not read yet and
lose them after a crash. :class:`CreatedWindowSource` therefore reads the time range in windows
(``window_days`` wide, wider across empty stretches, the last one open-ended), pages through each
window with the SDK's own ``auto_paging_iter``, and yields the window's records sorted by
``created`` ascending. The cursor is exact once a window's records are yielded.

Nothing of a window can be yielded before all of it is read, so a window may not hold more than
``max_window_records``: one that does is left at once and read again narrower (as narrow as the
density read so far says, at least by half, down to one second), and the next windows follow the
density. So the runner has records to commit at least every few thousand read, whatever the
windows (a first window widened over empty months could otherwise hold a year of charges), and
memory is bounded by that many records too.

A first run (no cursor) does not know where the account's records begin, and Stripe cannot list
oldest first. It starts with the newest page of everything since ``start`` (2011 without one):
when that is all there is (an empty account, or up to a page of records), it is yielded, one
request in all. Otherwise the oldest record is looked for rather than reached window by window
across empty years: a probe for one record ``created`` before a moment says whether anything is
older, so halving the stretch between the lower bound and the oldest record of the newest page
finds, in about ``log2(years / window_days)`` requests (8 for 2011 to 2026 in 30-day windows),
a start less than a window before the oldest record (:func:`~connectors.stripe.windows.floor`).
The windows begin there. With a ``start``, which is usually where the records begin, the window
from ``start`` is read first and the search only follows if it was empty. So a first run costs
the pages its windows hold plus about ten requests, whatever year the account began. Probes
yield nothing and leave no trace: a run that dies during the search starts it again.

Each run starts ``overlap_seconds`` before the committed cursor: records created in the same
second as the cursor, or that became visible late, are read again and the ledger finds them
unchanged. Records still in flux (a pending ACH charge, a pending refund) hold the cursor back to
their own ``created``, so the next runs look at them again until they settle (see
:meth:`CreatedWindowSource.in_flux`).

Every record is checked against the fields the source relies on (:mod:`connectors.stripe.models`):
one that breaks Stripe's published contract (an ``amount`` missing or not an integer) is
dead-lettered naming the field, and the run goes on.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.stripe.service import DEFAULT_BASE_URL, NAME, stripe_client, stripe_errors
from connectors.stripe.windows import WindowRead, floor, split, width_for
from core.contract import ContractCheck
from core.source import Record, Source, Unreadable

if TYPE_CHECKING:
    import stripe

    from core.context import Context

_DAY = 86_400
_MAX_WIDENING = 8
# No Stripe object predates the company's launch; a run with no start and no cursor begins here.
STRIPE_EPOCH = 1_293_840_000  # 2011-01-01T00:00:00Z


def to_unix(value: Any) -> Any:
    """A start given as a date (``2025-01-01``), an ISO date-time or Unix seconds, as seconds."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return to_unix(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            msg = "start must be a date (2025-01-01), an ISO date-time or Unix seconds"
            raise ValueError(msg) from None
    return value


class ListSettings(BaseModel):
    """What every incremental Stripe list source takes."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(description="a secret (sk_) or restricted (rk_) key")
    base_url: str = Field(DEFAULT_BASE_URL, description="Stripe's API address")
    start: int | None = Field(
        None,
        description="read objects created from this date, date-time or Unix time on",
        json_schema_extra={  # what _start accepts, for editors
            "anyOf": [
                {"type": "integer"},
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
                {"type": "null"},
            ]
        },
    )
    overlap_seconds: int = Field(
        3600, ge=0, description="each run re-reads this much before the last cursor"
    )
    page_size: int = Field(100, ge=1, le=100, description="objects per request (Stripe: 1-100)")
    window_days: int = Field(
        30, ge=1, description="objects are read and sorted this many days at a time"
    )
    max_window_records: int = Field(
        2000,
        ge=1,
        description="a window holding more objects is read again narrower, so that progress "
        "is committed at least this often",
    )

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> Any:
        return to_unix(value)

    @field_validator("api_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        return secret_key(value)


def secret_key(value: SecretStr) -> SecretStr:
    """``value``, unless it is a publishable key, which can read nothing."""
    if value.get_secret_value().strip().startswith("pk_"):
        msg = "a publishable key (pk_) cannot read this; use a secret (sk_) or restricted key"
        raise ValueError(msg)
    return value


class CreatedWindowSource(Source):
    """A Stripe list endpoint read window by window, oldest first. Subclasses say which list
    (:meth:`list_page`), what to expand, which statuses to keep and how a record is shaped."""

    #: Statuses that may still change; such an object holds the cursor back.
    unsettled: ClassVar[frozenset[str]] = frozenset({"pending"})
    #: The fields the source and its recipes rely on (see :mod:`connectors.stripe.models`).
    contract: ClassVar[type[BaseModel]]
    settings: ListSettings

    def __init__(self, settings: BaseModel, context: Context) -> None:
        super().__init__(settings, context)
        self._hold: int | None = None

    @abstractmethod
    def list_page(self, client: stripe.StripeClient, params: dict[str, Any]) -> Any:
        """The first page of the list for ``params`` (a ``stripe.ListObject``)."""

    def expand(self) -> list[str]:
        """The ``expand[]`` paths of the list request (``data.`` prefixed); none by default."""
        return []

    def keep(self, record: Mapping[str, Any]) -> bool:
        """Whether a record read is yielded; by default all of them are."""
        return True

    def in_flux(self, record: Mapping[str, Any]) -> bool:
        """Whether the record may still change, and so holds the cursor back to its creation;
        by default when its status is one of :attr:`unsettled`."""
        return record.get("status") in self.unsettled

    def to_record(self, obj: Any) -> Record:
        """The record for a listed SDK object: its plain dict by default."""
        record: Record = obj.to_dict()
        return record

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        client = stripe_client(self.settings.api_key, self.settings.base_url, self.context)
        check = ContractCheck(self.contract, NAME, lambda record: str(record["id"]))
        self._hold = None
        lower, oldest_known = self.lower_bound(cursor), None
        if cursor is None:
            newest = self._newest_page(client, lower, check)
            if not newest.overflowed:
                yield from self._settled(newest)  # everything there is, in one request
                return
            oldest_known = min(newest.created, default=int(time.time()))
            if self.settings.start is None:  # 2011: the first window is as good as empty
                lower, oldest_known = self._floor(client, lower, oldest_known), None
        yield from self._windows(client, check, lower, oldest_known)

    def _windows(
        self,
        client: stripe.StripeClient,
        check: ContractCheck,
        lower: int,
        oldest_known: int | None,
    ) -> Iterator[Record | Unreadable]:
        """The records from ``lower`` on, window by window. With ``oldest_known`` (on a first run
        from ``start``: a record created then exists), an empty first window is followed by the
        search for the oldest record, not by windows across the empty months."""
        now = int(time.time())
        base = width = self.settings.window_days * _DAY
        size = max(1, self.settings.max_window_records // 2)
        bounds: list[int | None] = []  # where windows must end, the next one last
        while True:
            upper = lower + width if lower + width <= now else None  # the last one is open
            # A window ending short of a bound by less than half its width goes on to it: the
            # sliver left would cost a request, and the width regrows from a sliver slowly.
            reach = None if upper is None else upper + width // 2
            if bounds and (reach is None or (bounds[-1] is not None and reach >= bounds[-1])):
                upper = bounds.pop()
            # A window of one second cannot be split, nor can the last one if it starts now.
            splittable = (upper if upper is not None else now) - lower > 1
            window = self._read_window(client, lower, upper, check, capped=splittable)
            if oldest_known is not None and upper is not None and window.read == 0:
                lower, oldest_known = self._floor(client, upper, oldest_known), None
                continue
            oldest_known = None
            if window.overflowed:
                bounds.extend(reversed(split(window, lower, upper, size)))
                width = width_for(window, (upper or now) - lower, size)
                continue
            yield from self._settled(window)
            if upper is None:
                return
            lower, width = upper, self._next_width(upper - lower, base, window.read)

    def _settled(self, window: WindowRead) -> Iterator[Record | Unreadable]:
        """A window's records to yield, oldest first; those in flux hold the cursor back."""
        # A record that breaks the contract has no trustworthy ``created`` to sort by or to hold
        # the cursor with: it is dead-lettered, the window's others go on in order.
        yield from window.broken
        records = window.records
        pending = [r["created"] for r in records if self.in_flux(r)]
        if pending:
            earliest = min(pending)
            self._hold = earliest if self._hold is None else min(self._hold, earliest)
        yield from (r for r in records if self.keep(r))

    def _next_width(self, width: int, base: int, read: int) -> int:
        """Empty stretches (before the account's first charge, quiet months) are crossed in ever
        wider steps; a window with records brings the width back to ``window_days``, growing
        back to it from a narrow one gradually, as long as windows stay well under the cap."""
        if read == 0:
            return min(width * 2, base * _MAX_WIDENING)
        if read <= self.settings.max_window_records // 4:
            return min(width * 2, base)
        return min(width, base)

    def lower_bound(self, cursor: Any | None) -> int:
        """Where this run starts: ``overlap_seconds`` before the cursor, never before ``start``."""
        lower = self.settings.start or STRIPE_EPOCH
        if cursor is not None:
            lower = max(lower, int(cursor) - self.settings.overlap_seconds)
        return lower

    def _params(self, lower: int, upper: int | None, limit: int) -> dict[str, Any]:
        created = {"gte": lower} if upper is None else {"gte": lower, "lt": upper}
        params: dict[str, Any] = {"created": created, "limit": limit}
        if expand := self.expand():
            params["expand"] = expand
        return params

    def _read_window(
        self,
        client: stripe.StripeClient,
        lower: int,
        upper: int | None,
        check: ContractCheck,
        *,
        capped: bool,
    ) -> WindowRead:
        """The records created in ``[lower, upper)``; when ``capped``, the read stops past the
        cap."""
        params = self._params(lower, upper, self.settings.page_size)
        window = WindowRead()
        with stripe_errors():
            for obj in self.list_page(client, params).auto_paging_iter():
                window.add(check.check(self.to_record(obj)))
                if capped and window.read > self.settings.max_window_records:
                    window.overflowed = True
                    break
        return window

    def _newest_page(
        self, client: stripe.StripeClient, lower: int, check: ContractCheck
    ) -> WindowRead:
        """The newest page of everything from ``lower`` on, ``overflowed`` when there is more;
        a page no larger than a window may be."""
        limit = min(self.settings.page_size, self.settings.max_window_records)
        window = WindowRead()
        with stripe_errors():
            page = self.list_page(client, self._params(lower, None, limit))
        for obj in page.data:
            window.add(check.check(self.to_record(obj)))
        window.overflowed = bool(page.has_more)
        return window

    def _floor(self, client: stripe.StripeClient, low: int, high: int) -> int:
        """Where the first window worth reading starts, when nothing was created from the
        lower bound to ``low`` and something was at ``high`` (see :func:`floor`)."""

        def newest_before(moment: int) -> int | None:
            params = {"created": {"gte": low, "lt": moment}, "limit": 1}
            with stripe_errors():
                found = self.list_page(client, params).data
            if not found:
                return None
            created = found[0].to_dict().get("created")
            # One without a readable ``created`` still says something is there.
            return created if isinstance(created, int) else moment - 1

        return floor(low, high, self.settings.window_days * _DAY, newest_before)

    def cursor_value(self, record: Mapping[str, Any]) -> Any | None:
        created = int(record["created"])
        return created if self._hold is None else min(created, self._hold)


def unexpanded_id(value: Any) -> str | None:
    """The id of an expandable field, whether Stripe sent the id or the expanded object."""
    if isinstance(value, Mapping):
        found = value.get("id")
        return str(found) if found is not None else None
    return str(value) if value is not None else None


def statuses_kept(record: Mapping[str, Any], statuses: Iterable[str] | None) -> bool:
    """Whether the record's status is among ``statuses`` (None keeps every status)."""
    return statuses is None or record.get("status") in set(statuses)
