"""Who holds a claim on inbox events, and whether that holder is gone.

Each server and worker process claims events under its own name, ``host:pid:scope:token``. Many
of them may drain one inbox (on many machines sharing Postgres), so a starting server must not
free a claim a live process holds: it is left to expire (its holder renews it while it works).
But a claim of a process that is gone need not wait that long: a server restarted on the machine
of one it replaces (SIGKILL, a crash) takes its claims again at once. ``scope`` names the machine
and the process-id namespace (a container has its own), so only a process that can see the
holder's process id judges whether it still runs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import uuid
from pathlib import Path


def holder() -> str:
    """This process's name on its claims."""
    return _holder(os.getpid())


@functools.cache
def _holder(pid: int) -> str:  # by pid: a forked child is a holder of its own
    return f"{socket.gethostname()}:{pid}:{_scope()}:{uuid.uuid4().hex[:8]}"


@functools.cache
def _scope() -> str:
    """This machine's boot and this process's PID namespace, hashed."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(path) if path.endswith("/pid") else Path(path).read_text())
        except OSError:
            continue
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def gone(claimed_by: str) -> bool:
    """Whether the process that holds a claim is this one or one that no longer runs on this
    machine (so its claims are free now); False for a live process, another machine's, or a
    holder this cannot tell about."""
    if claimed_by == holder():
        return True
    parts = claimed_by.rsplit(":", 3)  # a host's name holds no colon, but be sure
    if len(parts) != 4:
        return False
    _host, pid, scope, _token = parts
    if scope != _scope() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():  # an earlier process under this id, before this one started
        return True
    return not _running(int(pid))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # killed, not yet reaped by its parent: it holds nothing any more
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
