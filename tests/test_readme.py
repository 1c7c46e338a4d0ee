"""Everything the README marks as runnable works as written, from a fresh copy of the checkout.

A block fenced as ```` ```sh runnable ```` is run with ``bash -e`` in the copy and must succeed;
```` ```sh runnable background ```` starts a command that serves until Ctrl-C (as in a second
terminal): the next blocks run once it says so ("Ctrl-C"), and it is stopped with Ctrl-C
(SIGINT) at the end. Blocks run in order, each in its own shell, with the checkout's
``connector`` first on PATH, as ``source .venv/bin/activate`` gives it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```sh runnable( background)?\n(.*?)^```", re.M | re.S)
# The variables a developer's shell may hold that would change what the README's commands do.
_PREFIXES = ("VIRTUOUS_", "STRIPE_", "MAILCHIMP_", "GIVEBUTTER_", "DONORBOX_", "CONNECTOR_STATE")


def _fresh_copy(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files, a fresh clone's, are unknown")
    for name in listed.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


class _Background:
    """A block serving in the background, as in a second terminal."""

    def __init__(self, script: str, cwd: Path, env: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            ["bash", "-ec", script],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, so Ctrl-C reaches the command it runs
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_until_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any("Ctrl-C" in line for line in self.output):
            assert self.process.poll() is None, "".join(self.output)
            assert time.monotonic() < deadline, "".join(self.output)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def test_the_readmes_runnable_blocks_work_as_written_from_a_fresh_copy(tmp_path) -> None:
    blocks = BLOCK.findall(README)
    assert blocks, "the README marks no block as runnable"
    checkout = _fresh_copy(tmp_path / "checkout")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    serving: list[_Background] = []
    try:
        for background, script in blocks:
            if background:
                serving.append(_Background(script, checkout, env))
                serving[-1].wait_until_serving()
                continue
            done = subprocess.run(
                ["bash", "-ec", script],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert done.returncode == 0, f"$ {script}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
    finally:
        for block in serving:
            block.stop()
    for block in serving:
        assert block.process.returncode == 0, "".join(block.output)
