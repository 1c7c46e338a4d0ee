"""Incremental reads: timestamps in any common form, formatted for a query, and a high-water mark.

The runner commits the highest cursor value of each batch. That is only safe when records arrive
in cursor order; most list endpoints cannot sort by "updated", so :class:`HighWaterMark` hands
the highest value out with the *last* record of a complete read instead. A run that stops early
then leaves the cursor where it was, and the next run reads the same window again: the ledger
recognises everything already written as unchanged. :class:`MarkedSource` wires a mark into a
paged source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from connectors.http.paths import dig
from core.source import Record, Source

CursorFormat = Literal["iso", "date", "unix"]

# Above this a number is taken as milliseconds (no seconds timestamp is this big until 5138).
_MILLIS_THRESHOLD = 1e11


def parse_moment(value: Any) -> datetime | None:
    """A UTC ``datetime`` from ISO 8601 text (``Z``, an offset, or none: UTC), ``YYYY-MM-DD``,
    a ``date``/``datetime``, or Unix seconds (milliseconds when the number is that large).

    ``None`` and empty text give ``None``; anything else unreadable raises ``ValueError``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        msg = f"not a timestamp: {value!r}"
        raise ValueError(msg)
    if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
        seconds = float(value)
        if abs(seconds) >= _MILLIS_THRESHOLD:
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            msg = f"not a timestamp: {value!r} (expected ISO 8601, YYYY-MM-DD or Unix seconds)"
            raise ValueError(msg) from None
    else:
        msg = f"not a timestamp: {type(value).__name__} {value!r}"
        raise ValueError(msg)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _start_text(value: Any) -> Any:
    """A ``start:`` setting as text, checked to be readable. YAML reads ``start: 2025-01-01`` as a
    date and ``start: 1735689600`` as an int; both are fine."""
    if isinstance(value, date):  # datetimes too
        value = value.isoformat()
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        parse_moment(value)  # a ValueError names the bad value
    return value


#: The type of a ``start:`` setting: a date, an ISO 8601 time or Unix seconds, kept as text.
Start = Annotated[str | None, BeforeValidator(_start_text)]


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_moment(moment: datetime, fmt: CursorFormat) -> str | int:
    """``iso``: ``2025-01-05T12:00:00Z``; ``date``: ``2025-01-05``; ``unix``: seconds.

    Fixed-width text and integers compare in time order, which the runner's ``max`` relies on.
    """
    if fmt == "unix":
        return int(moment.timestamp())
    if fmt == "date":
        return moment.date().isoformat()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resume_from(
    cursor: Any, start: Any, fmt: CursorFormat, overlap: timedelta = timedelta(0)
) -> str | int | None:
    """The value to send for "changed since", in ``fmt``: the committed cursor minus ``overlap``;
    on a first run, ``start`` as given. ``None`` when there is neither: read everything."""
    if cursor is not None:
        moment = parse_moment(cursor)
        return format_moment(moment - overlap, fmt) if moment is not None else None
    first = parse_moment(start)
    return format_moment(first, fmt) if first is not None else None


class HighWaterMark:
    """The highest cursor value of a read, released only when it is safe to commit.

    ``ordered=False`` (the default): the value goes with the last record of a complete read, found
    by looking one record ahead. ``ordered=True``: the API returns records oldest first by the
    cursor field, so every record carries the highest value so far and the cursor advances with
    each batch.
    """

    def __init__(
        self, extract: Callable[[dict[str, Any]], Any | None], *, ordered: bool = False
    ) -> None:
        self._extract = extract
        self._ordered = ordered
        self._high: Any | None = None
        self._carrier: dict[str, Any] | None = None

    def track(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pass ``records`` through, noting each one's cursor value."""
        previous: dict[str, Any] | None = None
        for record in records:
            self._note(record)
            if self._ordered:
                self._carrier = record
                yield record
                continue
            if previous is not None:
                yield previous
            previous = record
        if previous is not None:
            self._carrier = previous
            yield previous

    def value(self, record: Mapping[str, Any]) -> Any | None:
        """The cursor to commit with ``record``: the high-water mark, or ``None`` if not yet."""
        return self._high if record is self._carrier else None

    def _note(self, record: dict[str, Any]) -> None:
        value = self._extract(record)
        if value is not None and (self._high is None or value > self._high):
            self._high = value


def cursor_field(record: Mapping[str, Any], path: str, fmt: CursorFormat) -> str | int | None:
    """The record's timestamp at dotted ``path`` in ``fmt``; ``None`` if absent or unreadable
    (one odd record must not stop the read; it just does not move the cursor)."""
    try:
        moment = parse_moment(dig(record, path))
    except ValueError:
        return None
    return format_moment(moment, fmt) if moment is not None else None


class MarkedSource(Source):
    """A paged source whose cursor is the :class:`HighWaterMark` of the records it reads."""

    _mark: HighWaterMark | None = None

    def track(self, pages: Iterable[list[Record]], mark: HighWaterMark | None) -> Iterator[Record]:
        """The records of ``pages`` in order, each noted on ``mark`` (``None``: no cursor)."""
        self._mark = mark
        records = chain.from_iterable(pages)
        return mark.track(records) if mark is not None else records

    def cursor_value(self, record: Mapping[str, Any]) -> Any | None:
        return self._mark.value(record) if self._mark is not None else None
