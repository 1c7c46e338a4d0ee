"""Scheduled gift recipes against the Virtuous emulator, and workers to run them."""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.virtuous.support import KEY, Virtuous, donations_csv, gifts_recipe

ROOT = Path(__file__).resolve().parents[3]
CONNECTOR = Path(sys.executable).parent / "connector"


def scheduled_gifts(
    folder: Path, recipes: int, gifts: int, batch: int, schedule: str = "* * * * *"
) -> Path:
    """``recipes`` recipes due on ``schedule`` (every minute) in ``folder``, ``gifts`` donations
    each (ids unique across them); the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(recipes):
        donations_csv(folder / f"donations-{n}.csv", gifts, start=1 + n * gifts)
        text = (
            gifts_recipe(batch=batch)
            .replace("name: gifts", f'name: gifts-{n}\nschedule: "{schedule}"')
            .replace("path: donations.csv", f"path: donations-{n}.csv")
        )
        (folder / f"gifts-{n}.yaml").write_text(text, encoding="utf-8")
    return folder


def clock_from(monkeypatch: pytest.MonkeyPatch, start: float) -> Callable[[float], None]:
    """Set ``time.time`` going from ``start``, for the whole process (its emulators too); a
    function that moves it on by some seconds."""
    real, offset = time.time, [start - time.time()]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def move_on(seconds: float) -> None:
        offset[0] += seconds

    return move_on


def worker_env(virtuous: Virtuous, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return env | {"VIRTUOUS_BASE_URL": virtuous.url, "VIRTUOUS_API_KEY": KEY, **extra}


def start_worker(folder: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CONNECTOR), "worker", "--dir", str(folder), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stderr_until(worker: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """What ``worker`` wrote on stderr until it wrote ``text`` (all it wrote, should it end or
    ``timeout`` pass first); ``communicate`` reads the rest."""
    assert worker.stderr is not None
    fd, told = worker.stderr.fileno(), b""
    deadline = time.monotonic() + timeout
    while text.encode() not in told and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            told += chunk
    return told.decode()


def gift_ids(virtuous: Virtuous) -> Counter[str]:
    """How many times each transaction id reached the emulator's holding."""
    state = virtuous.state()
    return Counter(t["transactionId"] for t in [*state["pending"], *state["needsUpdate"]])


def most_in_a_window(virtuous: Virtuous, window: float) -> int:
    """The most requests the organization's API took in any of the server's windows."""
    entries: list[Any] = virtuous.app.state.emulator.requests
    counts = Counter(
        math.floor(e.time.timestamp() / window) for e in entries if e.path.startswith("/api")
    )
    return max(counts.values(), default=0)


def statuses(virtuous: Virtuous) -> Counter[int]:
    return Counter(e.status for e in virtuous.app.state.emulator.requests)
