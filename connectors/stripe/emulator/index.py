"""The Stripe emulator's lists, kept in order as objects are made, so that a page costs what it
shows rather than what the account holds.

Each table keeps its objects sorted by rank, ``(created, order made)``, and so does each value of
the fields a list filters on by equality (a charge's ``customer``, an event's ``type``). A page
bisects the ranks for its ``created`` bounds and cursor, then walks from there: newest first, or
oldest first after ``ending_before``. Ranks never change (Stripe's ``created`` is fixed, and so
are the filtered fields in the emulator), so nothing is re-sorted.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Rank = tuple[int, ...]
Obj = dict[str, Any]

#: The fields each table's list filters on by equality (the query names of ``app._listing``).
INDEXED: dict[str, tuple[str, ...]] = {
    "charges": ("customer", "payment_intent", "transfer_group"),
    "customers": ("email", "test_clock"),
    "refunds": ("charge", "payment_intent"),
    "events": ("type",),
    "balance_transactions": (),
    "webhook_endpoints": (),
}


class Ranked:
    """Object ids sorted by their rank, oldest first."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int, str]] = []

    def add(self, rank: tuple[int, int], object_id: str) -> None:
        # Objects mostly arrive newest last: insort then only appends.
        insort(self.entries, (*rank, object_id))

    def remove(self, rank: tuple[int, int], object_id: str) -> None:
        at = bisect_left(self.entries, (*rank, object_id))
        if at < len(self.entries) and self.entries[at] == (*rank, object_id):
            del self.entries[at]

    def between(
        self, low: Rank, high: Rank, *, newest_first: bool
    ) -> Iterator[tuple[int, int, str]]:
        """The entries ranked from ``low`` (included) to ``high`` (left out)."""
        start, stop = bisect_left(self.entries, low), bisect_left(self.entries, high)
        steps = range(stop - 1, start - 1, -1) if newest_first else range(start, stop)
        return (self.entries[i] for i in steps)


@dataclass(frozen=True)
class Span:
    """Where a page may look: ranks from ``low`` (included) to ``high`` (left out). A rank is
    ``(created, order)``; ``(created,)`` sorts before every rank of that second."""

    low: Rank = (-(2**63),)
    high: Rank = (2**63,)

    def narrowed(self, low: Rank | None = None, high: Rank | None = None) -> Span:
        return Span(max(self.low, low or self.low), min(self.high, high or self.high))


class TableIndex:
    """One table's ranks, in all and per value of each of its equality-filtered fields."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.all = Ranked()
        self.by_value: dict[tuple[str, Hashable], Ranked] = {}

    def add(self, obj: Obj, rank: tuple[int, int]) -> None:
        self.all.add(rank, obj["id"])
        for name in self.fields:
            value = obj.get(name)
            self.by_value.setdefault((name, value), Ranked()).add(rank, obj["id"])

    def remove(self, obj: Obj, rank: tuple[int, int]) -> None:
        self.all.remove(rank, obj["id"])
        for name in self.fields:
            found = self.by_value.get((name, obj.get(name)))
            if found is not None:
                found.remove(rank, obj["id"])

    def texts(self, name: str) -> list[str]:
        """Every text value of ``name`` some object of the table holds."""
        return [v for field, v in self.by_value if field == name and isinstance(v, str)]

    def sources(self, wanted: dict[str, Any]) -> tuple[list[Ranked], dict[str, Any]]:
        """The ranked lists to walk for ``wanted`` (field -> value): the shortest one of a
        wanted field, and the fields left to check on each object."""
        if not wanted:
            return [self.all], {}
        lists = {name: self.by_value.get((name, _key(value))) for name, value in wanted.items()}

        def size(name: str) -> int:
            found = lists[name]
            return -1 if found is None else len(found.entries)

        name = min(lists, key=size)
        chosen = lists[name]
        rest = {k: v for k, v in wanted.items() if k != name}
        return ([chosen] if chosen is not None else []), rest


def _key(value: Any) -> Hashable:
    # A bracketed query value arrives as a dict or list: it equals no stored value.
    return value if isinstance(value, Hashable) else ("unhashable", id(value))


def walk(
    sources: Iterable[Ranked], span: Span, *, newest_first: bool
) -> Iterator[tuple[int, int, str]]:
    """The entries of every source inside ``span``, merged in rank order."""
    runs = [ranked.between(span.low, span.high, newest_first=newest_first) for ranked in sources]
    if len(runs) == 1:
        return runs[0]
    return heapq.merge(*runs, reverse=newest_first)


def first(
    entries: Iterator[tuple[int, int, str]],
    fetch: Callable[[str], Obj],
    keep: Callable[[Obj], bool],
    count: int,
) -> list[Obj]:
    """Up to ``count`` objects of ``entries`` that ``keep`` accepts."""
    kept = (obj for obj in (fetch(entry[2]) for entry in entries) if keep(obj))
    return list(itertools.islice(kept, count))
