"""A list endpoint's filtered, sorted answer kept from one page to the next.

A service paged by number or offset (``page=2``, ``offset=100``) answers each page from the same
ordered listing. Filtering and sorting everything the emulator holds for every page made reading
N records cost N pages times N records; keeping the listing until the data changes makes it cost
one sort, then what each page shows::

    rows = state.listings.get(("members", list_id, filters), lambda: filtered_and_sorted())
    page = rows[offset : offset + count]

The emulator calls :meth:`Listings.changed` whenever it changes what a listing could show (a
record added, edited, refunded, removed). The kept rows are the records themselves, so a page
always shows each one as it is now; only the order and the membership are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

#: Listings kept at once: a reader pages through one or two; a test may ask for many.
_KEPT = 32


class Listings:
    """Ordered listings by key, all dropped at each change."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, Any] = {}
        self._changes = 0

    def changed(self) -> None:
        self._changes += 1
        self._kept.clear()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The listing for ``key``: built now, or kept since the last change. A ``build`` that
        raises (a refused filter) keeps nothing."""
        if key in self._kept:
            kept: T = self._kept[key]
            return kept
        changes = self._changes
        built = build()
        # A change made while it was built (a test seeding from its own thread) may be missing.
        if changes == self._changes:
            if len(self._kept) >= _KEPT:
                self._kept.clear()
            self._kept[key] = built
        return built


def query_key(query: dict[str, str], paging: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The part of ``query`` that chooses and orders a listing: all but its ``paging`` names."""
    return tuple(sorted((k, v) for k, v in query.items() if k not in paging))
