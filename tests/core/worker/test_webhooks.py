"""`connector worker` serving webhook recipes: two workers on one Postgres state take
deliveries for one recipe and each event is synced once; `--once` syncs what waits in the
inbox. (`test.webhook` into a file, started through tests/core/serve/launch.py.)"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from core.state import NewEvent, SqliteStateStore
from tests.conftest import read_jsonl
from tests.core.serve.conftest import recipe_text
from tests.core.serve.signed import SECRET, delivery, event

ROOT = Path(__file__).resolve().parents[3]


def _worker(folder: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    environment |= {"PYTHONPATH": str(ROOT), "TEST_WEBHOOK_SECRET": SECRET, **env}
    command = [sys.executable, "-m", "tests.core.serve.launch", "worker", "recipe.yaml", *args]
    return subprocess.Popen(command, cwd=folder, env=environment, stderr=subprocess.PIPE, text=True)


def _listening(process: subprocess.Popen[str]) -> str:
    """The URL a serving worker announced (its stderr read on, so it never blocks)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline, said = time.monotonic() + 60, []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            said.append(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if found := re.search(r"listening on (http://[\d.]+:\d+)", said[-1]):
            return found.group(1)
    pytest.fail(f"the worker never listened: {''.join(said)}")


def test_two_workers_serve_one_recipe_and_sync_each_event_once(
    tmp_path: Path, postgres_url: str
) -> None:
    (tmp_path / "recipe.yaml").write_text(recipe_text())
    workers = [_worker(tmp_path, "--port", "0", CONNECTOR_STATE_URL=postgres_url) for _ in range(2)]
    try:
        urls = [_listening(w) for w in workers]
        for n in range(30):
            body, headers = delivery(event(f"gift-{n}", amount=n, event_id=f"evt-{n}"))
            answer = httpx.post(f"{urls[n % 2]}/hooks/hooks", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
        out = tmp_path / "out.jsonl"
        deadline = time.monotonic() + 60
        while len(read_jsonl(out) if out.exists() else []) < 30:
            assert time.monotonic() < deadline, "the events were not all synced"
            time.sleep(0.1)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=60)
    assert [w.returncode for w in workers] == [0, 0]
    assert Counter(r["id"] for r in read_jsonl(tmp_path / "out.jsonl")) == Counter(
        {f"gift-{n}": 1 for n in range(30)}
    )


def test_once_syncs_what_waits_in_the_inbox(tmp_path: Path) -> None:
    (tmp_path / "recipe.yaml").write_text(recipe_text())
    store = SqliteStateStore(tmp_path / ".connector" / "state.db")
    waiting = [NewEvent("hooks", "GiftCreate", f"gift-{n}", {"id": f"gift-{n}"}) for n in range(5)]
    store.inbox_enqueue(waiting)
    store.close()
    once = _worker(tmp_path, "--once")
    _, told = once.communicate(timeout=60)
    assert once.returncode == 0, told
    assert "hooks: 5 webhook events synced, 0 wait to be retried" in told
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [f"gift-{n}" for n in range(5)]
