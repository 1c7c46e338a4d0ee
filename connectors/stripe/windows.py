"""What one window of a Stripe list read gave, and how a window too full to read is split.

A window's records can only be yielded once all of it is read (Stripe lists newest first, the
runner needs oldest first), so a window may not hold more than a cap. Reading one that does stops
at the cap, having seen the ``created`` of its newest records. The part below the oldest of them
is read next, from the bottom, in windows as wide as the density seen says half the cap takes
(:func:`width_for`); the part already seen is then read in windows cut at the known values
(:func:`split`). So the records read before the first yield stay within about twice the cap,
each record is read at most twice per split, and no window yields more than the cap.

A first run looks for the oldest record instead of crossing the empty years window by window
(:func:`floor`): each probe asks for the newest record before a moment, one at most, and halves
the stretch where the oldest one can be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.source import Record, Unreadable


@dataclass
class WindowRead:
    """The records of one window as read, newest first; ``overflowed`` when the read stopped at
    the cap, before the window's oldest records."""

    read: int = 0
    overflowed: bool = False
    created: list[int] = field(default_factory=list)  # of the readable records, newest first
    by_id: dict[str, Record] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)

    def add(self, record: Record | Unreadable) -> None:
        self.read += 1
        if isinstance(record, Unreadable):
            self.unreadable.append(record)
            return
        self.by_id[record["id"]] = record
        self.created.append(int(record["created"]))

    @property
    def records(self) -> list[Record]:
        """The readable records, oldest first."""
        return sorted(self.by_id.values(), key=lambda r: int(r["created"]))

    @property
    def broken(self) -> list[Unreadable]:
        """The records that broke the contract, oldest first."""
        return self.unreadable[::-1]


def split(window: WindowRead, lower: int, upper: int | None, size: int) -> list[int | None]:
    """The bounds that replace ``[lower, upper)`` after ``window`` overflowed, in reading order
    (the last one is ``upper``): first the oldest record read (below it nothing was seen), then
    the part seen, cut every ``size`` records at their ``created``."""
    seen = sorted(window.created)
    bounds: list[int | None] = []
    previous = lower
    # No cut leaves fewer than half of ``size`` above it: the read stops one past the cap, and
    # a window of that one record would cost a request.
    for cut in [*seen[:1], *seen[size : len(seen) - size // 2 : size]]:
        if cut > previous:
            bounds.append(cut)
            previous = cut
    return [*bounds, upper]


def width_for(window: WindowRead, width: int, size: int) -> int:
    """The width in which ``size`` records are expected at the density of what ``window`` read,
    at most half of ``width`` (half of it when nothing readable tells the density)."""
    if len(window.created) < 2:
        return max(1, width // 2)
    span = max(1, window.created[0] - window.created[-1])  # newest first
    return max(1, min(width // 2, span * size // len(window.created)))


def floor(low: int, high: int, width: int, newest_before: Callable[[int], int | None]) -> int:
    """Where to read from when nothing was created in ``[.., low)`` and something was at
    ``high``: a moment no later than the oldest record and less than ``width`` before it, so the
    window of ``width`` that starts there holds it. ``newest_before(moment)`` is the ``created``
    of the newest record from ``low`` to before ``moment``, None when there is none; it is
    asked about ``log2((high - low) / width)`` times at most."""
    while high - low >= width:
        middle = low + (high - low + 1) // 2  # above low, even one second above
        found = newest_before(middle)
        if found is None:
            low = middle
        else:  # the oldest record is no later than the one found, which is before the middle
            high = min(found, middle - 1)
    return low
