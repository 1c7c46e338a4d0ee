"""``connector serve`` as a process, as a user starts it, for end-to-end tests: its address, what
it said on stderr, and a SIGTERM stop."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

CONNECTOR = Path(sys.executable).parent / "connector"


class Serve:
    """``connector serve RECIPE... --port PORT [--state STATE]``, its stderr read as it comes.

    ``program`` replaces the ``connector`` executable (a launcher that arms kill points), ``cwd``
    and ``env`` are the process's (relative recipe and state paths are read from ``cwd``).
    """

    def __init__(
        self,
        recipes: Path | str | Sequence[Path | str],
        state: Path | str | None = None,
        port: int = 0,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        program: Sequence[str] = (str(CONNECTOR),),
    ) -> None:
        named = [recipes] if isinstance(recipes, Path | str) else list(recipes)
        command = [*program, "serve", *map(str, named), "--port", str(port)]
        command += ["--state", str(state)] if state is not None else []
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(os.environ if env is None else env),
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        found = re.search(r"listening on (http://[\d.]+:\d+)", self._wait_for("listening on "))
        assert found is not None
        self.url = found.group(1)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.said.append(line)
            self.lines.put(line)

    def _wait_for(self, text: str) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if text in line:
                return line
        pytest.fail(f"connector serve never said {text!r}: {''.join(self.said)}")

    def until(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        """Wait for ``condition``; fail naming ``what``, with what the server said."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"never happened: {what}; connector serve said: {''.join(self.said)}")
            time.sleep(0.1)

    def count(self, metric: str, **labels: str) -> int:
        """The sum of ``metric`` over its series in ``GET /metrics`` that carry ``labels``."""
        total = 0
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            name, _, rest = line.partition("{")
            if name == metric and all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def free_port() -> int:
    """A loopback port nothing listens on now: a URL to register before the server starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
