"""SIGTERM and SIGINT taken by a handler of our own for a while, then given back.

``connector serve`` and ``connector worker`` stop gracefully on either: each says so in its own
words and stops in its own way, through :func:`stop_signals_handled`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_signals_handled(handle: Callable[[signal.Signals], None]) -> Iterator[None]:
    """Call ``handle`` with the signal when SIGTERM or SIGINT arrives, until the block ends;
    the handlers there were before are then put back."""

    def note(signum: int, frame: FrameType | None) -> None:
        handle(signal.Signals(signum))

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
