"""One run of a recipe at a time, across every process on the host.

Two runs of one recipe would read the same records and both write them before either commits its
ledger, and a file sink would then cut the other run's lines away on the next start. The lock is
an advisory ``flock`` on a file beside the state database: the kernel drops it when the process
dies, so a crash never leaves a recipe locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import RunInProgressError


@contextmanager
def recipe_lock(directory: Path, recipe: str) -> Iterator[None]:
    """Hold ``recipe``'s lock in ``directory`` for the duration of the block, or raise
    :class:`RunInProgressError` at once when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{recipe}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            msg = (
                f"another run of {recipe} is in progress (process {holder}); wait for it to"
                " finish: two runs at once could send the same records twice"
            )
            raise RunInProgressError(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
