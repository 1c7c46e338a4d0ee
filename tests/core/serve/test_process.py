"""``connector serve`` as a process: killed, stopped, started again; nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from core.state import SqliteStateStore
from tests.conftest import read_jsonl
from tests.core.serve.conftest import recipe_text
from tests.core.serve.signed import SECRET, delivery, event
from tests.serve_process import Serve

ROOT = Path(__file__).resolve().parents[3]


class Serving(Serve):
    """``connector serve`` of the test recipe in ``directory``, through the launcher that arms
    ``kill_at``."""

    def __init__(self, directory: Path, kill_at: str = "") -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEST_WEBHOOK_SECRET": SECRET,
            "KILL_AT": kill_at,
        }
        launcher = (sys.executable, "-m", "tests.core.serve.launch")
        super().__init__("recipe.yaml", "state.db", cwd=directory, env=env, program=launcher)
        self.directory = directory
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(self, *events: dict[str, object]) -> bool:
        """Whether the delivery was acknowledged."""
        body, headers = delivery(*events)
        try:
            return (
                self.client.post("/hooks/hooks", content=body, headers=headers).status_code == 200
            )
        except httpx.TransportError:
            return False

    def wait_drained(self, expected: int) -> None:
        def drained() -> bool:
            pending = self.count("connector_inbox_events", recipe="hooks", status="pending")
            return pending == 0 and len(_written(self.directory)) >= expected

        self.until(drained, "the inbox drained", timeout=60)

    def stop(self) -> int:
        self.client.close()
        return super().stop()


@pytest.fixture
def served_dir(tmp_path: Path) -> Path:
    (tmp_path / "recipe.yaml").write_text(recipe_text(), encoding="utf-8")
    return tmp_path


def _written(directory: Path) -> list[dict[str, object]]:
    path = directory / "out.jsonl"
    return read_jsonl(path) if path.exists() else []


def _pending(directory: Path) -> int:
    store = SqliteStateStore(directory / "state.db")
    try:
        return len(store.inbox_events("hooks"))
    finally:
        store.close()


@pytest.mark.parametrize("point", ["acknowledged", "drained"])
def test_killed_after_acknowledging_nothing_is_lost_or_doubled_after_a_restart(
    served_dir: Path, point: str
) -> None:
    server = Serving(served_dir, kill_at=f"{point}:3")
    acknowledged = []
    for n in range(40):  # until the kill lands (the third batch drained)
        if not server.post(event(f"g{n}", amount=n), event(f"h{n}", amount=n)):
            break
        acknowledged += [f"g{n}", f"h{n}"]
    assert server.process.wait(timeout=60) == -signal.SIGKILL
    assert _pending(served_dir) >= 2  # acknowledged, committed, not done when it died
    # Started again, it drains what the killed one left; stopped by SIGTERM, it exits cleanly
    # keeping whatever it acknowledged and had not drained yet for the next start.
    again = Serving(served_dir)
    again.wait_drained(len(acknowledged))
    late = [f"late{n}" for n in range(10)]
    assert all(again.post(event(key, amount=1)) for key in late)
    assert again.stop() == 0
    assert "SIGTERM: stopping; what was acknowledged is kept" in "".join(again.said)
    written = Counter(str(line["id"]) for line in _written(served_dir))
    assert max(written.values()) == 1  # nothing is written twice
    assert len(set(late) - set(written)) == _pending(served_dir)  # the rest is kept
    assert set(acknowledged) <= set(written)  # nothing acknowledged is lost
