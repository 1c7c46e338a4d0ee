"""Scheduled gift recipes against the Virtuous emulator, and workers to run them."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.connectors.virtuous.support import KEY, Virtuous, donations_csv, gifts_recipe

ROOT = Path(__file__).resolve().parents[3]
CONNECTOR = Path(sys.executable).parent / "connector"


def scheduled_gifts(folder: Path, recipes: int, gifts: int, batch: int) -> Path:
    """``recipes`` recipes due every minute in ``folder``, ``gifts`` donations each (ids
    unique across them); the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(recipes):
        donations_csv(folder / f"donations-{n}.csv", gifts, start=1 + n * gifts)
        text = (
            gifts_recipe(batch=batch)
            .replace("name: gifts", f'name: gifts-{n}\nschedule: "* * * * *"')
            .replace("path: donations.csv", f"path: donations-{n}.csv")
        )
        (folder / f"gifts-{n}.yaml").write_text(text, encoding="utf-8")
    return folder


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
