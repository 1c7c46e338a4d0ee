"""The rows of a CSV file, read so that no one record can block the records after it.

A record is refused, naming its first line, when it is longer than the length limit of
:mod:`core.limits` (a 2 GB cell, or a quote that never closes) or when the csv module cannot
parse it; reading then starts again on the line after that record's first, so every row after a
broken one is read as it would have been without it.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from typing import IO, NamedTuple

from connectors.files.common import bounded_lines, too_long
from core import limits


class Row(NamedTuple):
    """The cells of a record starting at ``line``, or the ``problem`` that kept it unread."""

    line: int
    cells: list[str] | None
    problem: str | None = None


def read_rows(handle: IO[str], delimiter: str) -> Iterator[Row]:
    """Each record of ``handle`` (opened with ``newline=""``), blank lines included."""
    longest = limits.current().length
    # The csv module's own limit is process-wide and 131,072 by default; ours is checked first.
    csv.field_size_limit(max(csv.field_size_limit(), longest + 1))
    lines = _Lines(bounded_lines(handle), longest)
    taken = lines.taken
    while True:
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            for cells in reader:
                # lines.start and lines.next_record(), inlined: this runs once per row
                yield Row(taken[0][0] if taken else lines.last + 1, cells)
                taken.clear()
                lines.size = 0
            return
        except (csv.Error, _TooLong) as error:
            yield Row(lines.start, None, lines.problem(error))
            lines.restart()


class _TooLong(Exception):
    """The record being read is over the length limit."""


class _Lines:
    """The lines fed to ``csv.reader``, remembering those of the record it is reading.

    Those lines are at most the length limit, so after a broken record they can be fed again,
    from the second on, to a fresh reader.
    """

    def __init__(self, lines: Iterator[tuple[int, str | None]], longest: int) -> None:
        self.lines = lines
        self.longest = longest
        self.again: deque[tuple[int, str | None]] = deque()
        self.taken: list[tuple[int, str | None]] = []
        self.size = 0
        self.last = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.again.popleft() if self.again else next(self.lines)
        self.taken.append(line)
        number, text = line
        self.last = number
        if text is None:
            raise _TooLong
        self.size += len(text)
        if self.size > self.longest:
            raise _TooLong
        return text

    @property
    def start(self) -> int:
        """The first line of the record being read."""
        return self.taken[0][0] if self.taken else self.last + 1

    def next_record(self) -> None:
        self.taken.clear()
        self.size = 0

    def restart(self) -> None:
        """Forget the broken record; its lines after the first are read again."""
        self.again.extendleft(reversed(self.taken[1:]))
        self.next_record()

    def problem(self, error: Exception) -> str:
        if not isinstance(error, _TooLong):
            return f"line {self.start} cannot be read as CSV: {error}"
        reason = too_long(self.start)
        if len(self.taken) > 1:
            reason += (
                f"; a quoted cell runs from line {self.start} past line {self.last}:"
                " is a closing quote missing?"
            )
        return reason
