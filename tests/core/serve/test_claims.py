"""Whose inbox claims a starting server frees: its own and those of processes of its machine that
no longer run; never a live process's, nor another machine's (those run out)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from core.serve.claims import gone, holder


def _holder_of(pid: int) -> str:
    """The name a process of this machine with ``pid`` claims under."""
    host, _, scope, token = holder().rsplit(":", 3)
    return f"{host}:{pid}:{scope}:{token}"


def _child() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_this_process_is_named_on_its_claims_and_frees_them() -> None:
    assert holder().split(":")[1] == str(os.getpid())
    assert holder() == holder()
    assert gone(holder())


def test_a_live_process_keeps_its_claims_and_a_killed_one_loses_them() -> None:
    child = _child()
    try:
        assert not gone(_holder_of(child.pid))
        child.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert gone(_holder_of(child.pid))
    finally:
        child.kill()
        child.wait()
    assert gone(_holder_of(child.pid))


def test_another_machines_or_containers_claims_are_left_to_run_out() -> None:
    host, pid, _, token = holder().split(":")
    assert not gone(f"{host}:{pid}:0123456789ab:{token}")  # the same id, elsewhere
    assert not gone("")  # a claim made before holders were named
    assert not gone("no holder at all")
