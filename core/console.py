"""Rich consoles that wrap only on a terminal: off one (cron, CI, a pipe) a line stays a line."""

from __future__ import annotations

from rich.console import Console

# Wide enough that no message is cut in two; tables are only as wide as their cells.
_UNWRAPPED_WIDTH = 1000


def console_for(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that wraps at the terminal's width, or not at all."""
    found = Console(stderr=stderr, highlight=False)
    if found.is_terminal:
        return found
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=_UNWRAPPED_WIDTH)
