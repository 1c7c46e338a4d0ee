"""Plain text for people: docstrings without their markup, and columns that fit 80 characters.

Docstrings are written for Sphinx (````value````, ``:func:`parse_date```); a terminal shows them as
the words they stand for.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

WIDTH = 80

_ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|exc|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
# A full stop ends a sentence; a semicolon or colon only joins its clauses.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}([^*\s][^*]*?)\*{1,2}(?![\w*])")


def plain(text: str) -> str:
    """``text`` without reStructuredText markup, on one line."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = _LITERAL.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    return " ".join(text.replace("`", "").split())


def summary(doc: str | None, *, sentence: bool = False) -> str:
    """The first paragraph of a docstring (or only its first sentence), as plain text."""
    text = plain((doc or "").strip().split("\n\n", 1)[0])
    if sentence:
        text = _SENTENCE_END.split(text, 1)[0]
    return text


def columns(
    rows: Iterable[tuple[str, str]], indent: int = 2, gap: int = 2, width: int | None = None
) -> list[str]:
    """``name  text`` lines within :data:`WIDTH`: names in one column (``width`` wide, or as
    wide as the longest), never cut; text wrapped under itself (a name too long for the column
    puts its text on the next line); a word is never cut, so one longer than the room runs past."""
    rows = list(rows)
    if not rows:
        return []
    room = WIDTH // 2 - indent
    width = min(width if width is not None else max(len(name) for name, _ in rows), room)
    hang = " " * (indent + width + gap)
    lines = []
    for name, text in rows:
        # A word longer than the room (a URL in an example) goes whole on its own line: a cut one
        # reads as two words and cannot be copied.
        wrapped = textwrap.wrap(
            text, WIDTH - len(hang), break_on_hyphens=False, break_long_words=False
        ) or [""]
        if len(name) > width:
            lines.append(" " * indent + name)
            lines.extend(hang + part for part in wrapped if part)
            continue
        lines.append(" " * indent + name.ljust(width + gap) + wrapped[0])
        lines.extend(hang + part for part in wrapped[1:])
    return [line.rstrip() for line in lines]
