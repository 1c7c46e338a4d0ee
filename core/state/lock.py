"""Who may touch a recipe's state: one run of a recipe at a time, files only their owner opens,
and a clear stop when another process holds the state database.

Two runs of one recipe would read the same records and both write them before either commits its
ledger, and a file sink would then cut the other run's lines away on the next start. So a run holds
two advisory ``flock`` locks, which the kernel drops when the process dies (a crash never leaves a
recipe locked):

* :func:`run_lock`, the recipe's own: keyed by the recipe file's resolved path and its name, in a
  per-user directory, so it holds wherever the state lives (``--state``, ``CONNECTOR_STATE_URL``);
* :func:`recipe_lock`, the state's: keyed by the recipe's name beside its state database, since
  the ledger rows of every recipe of that name in that database are the same rows. A Postgres
  state database, shared by many machines, holds a lease instead (:mod:`core.state.lease`).

The state database holds donors' names, emails and amounts, and OAuth tokens: :func:`private_file`
creates it (and the locks) readable by its owner only, whatever the umask.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from core.env import seconds_setting
from core.errors import FatalError, RunInProgressError

logger = logging.getLogger("core.state")

#: Where the recipes' own locks live; default ``$XDG_STATE_HOME/connector/locks``.
LOCK_DIR_VARIABLE = "CONNECTOR_LOCK_DIR"
#: Seconds to wait for another process's write lock on a state database before stopping.
BUSY_TIMEOUT_VARIABLE = "CONNECTOR_STATE_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 30.0

# SQLite's files beside a database: new ones take the database's permissions.
_COMPANIONS = ("-wal", "-shm", "-journal")


# --- one run of a recipe at a time ------------------------------------------------------------


def lock_directory() -> Path:
    """The per-user directory of the recipes' locks (``CONNECTOR_LOCK_DIR`` moves it)."""
    chosen = os.environ.get(LOCK_DIR_VARIABLE)
    if chosen:
        return Path(chosen).expanduser()
    state_home = os.environ.get("XDG_STATE_HOME")
    if not state_home:
        try:
            state_home = str(Path.home() / ".local" / "state")
        except RuntimeError:  # no HOME, no passwd entry: a bare container
            msg = f"no home directory for the recipes' locks: set {LOCK_DIR_VARIABLE}"
            raise FatalError(msg) from None
    return Path(state_home) / "connector" / "locks"


@contextmanager
def run_lock(recipe_path: Path, recipe: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the lock of the recipe in ``recipe_path`` named ``recipe``, wherever its state lives,
    or raise :class:`RunInProgressError` at once, naming the process that holds it (with
    ``wait``, wait for that process to let it go).

    The same file run from two checkouts is two recipes (each has its own state and outputs
    beside it); the same file run twice, even through a symlink, is one.
    """
    resolved = recipe_path.resolve()
    digest = hashlib.sha256(f"{resolved}\0{recipe}".encode()).hexdigest()[:16]
    name = f"{_safe(recipe)}-{digest}.lock"
    with _flock(lock_directory() / name, f"{recipe} ({resolved})", wait=wait):
        yield


@contextmanager
def recipe_lock(directory: Path, recipe: str, *, wait: bool = False) -> Iterator[None]:
    """Hold ``recipe``'s lock in ``directory`` (beside its state database) for the block, or
    raise :class:`RunInProgressError` at once when another process holds it (with ``wait``,
    wait for it)."""
    with _flock(directory / f"{_safe(recipe)}.lock", recipe, wait=wait):
        yield


@contextmanager
def _flock(path: Path, what: str, *, wait: bool = False) -> Iterator[None]:
    fd = _open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            if not wait:
                msg = (
                    f"another run of {what} is in progress ({holder}); wait for it to finish"
                    " (or run with --wait): two runs at once could send the same records twice"
                )
                raise RunInProgressError(msg) from None
            logger.warning("waiting for the run of %s (%s)", what, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}, since {since}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _open_lock_file(path: Path) -> int:
    try:
        private_directory(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        msg = (
            f"cannot create the lock {path}: {error.strerror or error};"
            f" set {LOCK_DIR_VARIABLE} to a directory you may write"
        )
        raise FatalError(msg) from None
    _tighten(path)  # made by an older version, or under a umask that let it be shared
    return fd


def _safe(recipe: str) -> str:
    """A recipe name as a file name: only letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", recipe)[:80] or "_"


# --- files only their owner opens ---------------------------------------------------------------


def private_directory(directory: Path) -> None:
    """Create ``directory`` (and its parents); one created here is its owner's only."""
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Make ``path`` readable by its owner only from its creation, whatever the umask; an
    existing file (and SQLite's companions of it) loses the permissions of group and others."""
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in _COMPANIONS)):
        _tighten(file)


def _tighten(file: Path) -> None:
    with contextlib.suppress(OSError):  # absent, or owned by someone else: left as it is
        mode = file.stat().st_mode
        if mode & 0o077:
            file.chmod(mode & 0o700)


# --- a state database another process holds ---------------------------------------------------


def busy_timeout() -> float:
    """Seconds to wait for another process's write lock on a state database
    (``CONNECTOR_STATE_BUSY_TIMEOUT``, default 30)."""
    return seconds_setting(BUSY_TIMEOUT_VARIABLE, DEFAULT_BUSY_TIMEOUT, least=0)


def is_busy(error: BaseException) -> bool:
    """Whether a SQLite error means another connection holds the database."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def database_locked(location: str | os.PathLike[str], waited: float) -> FatalError:
    """The error for a state database another process kept locked for ``waited`` seconds."""
    msg = (
        f"the state database {location} is locked by another process (waited {waited:g} s):"
        f" let it finish, or wait longer with {BUSY_TIMEOUT_VARIABLE}=SECONDS"
    )
    return FatalError(msg)
