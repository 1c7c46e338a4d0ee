"""One run of a recipe at a time, wherever its state lives; state and locks its owner's only.

The two-run test uses real processes: the first run reads its input from a named pipe, so it holds
its lock for exactly as long as the test keeps the pipe open."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.errors import RunInProgressError
from core.state.lock import lock_directory, run_lock
from tests.conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[2]

RECIPE = """
version: 1
name: locked
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  id: record.id
  email: record.email
sink:
  use: file.jsonl
  with: {path: out.jsonl}
tests:
  - input: {id: a, email: a@example.org}
    expect: {id: a}
"""

ROWS = [{"id": f"r{n}", "email": f"donor{n}@example.org"} for n in range(200)]


Start = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def connector() -> Iterator[Start]:
    """Start ``connector ARGS`` as its own process; any still running at the end is stopped."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str | Path) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", "from core.cli import main; main()", *map(str, args)]
        pipe = subprocess.PIPE
        started.append(subprocess.Popen(command, cwd=ROOT, stdout=pipe, stderr=pipe, text=True))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _open_writer_when_read(fifo: Path, timeout: float = 30) -> int:
    """Open the pipe's writing end once a reader has it open: the run is then past its lock."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "user-locks"
    monkeypatch.setenv("CONNECTOR_LOCK_DIR", str(directory))
    return directory


def test_a_second_run_with_its_state_elsewhere_exits_3_naming_the_first(
    write_recipe, tmp_path, lock_dir, monkeypatch, connector
) -> None:
    recipe = write_recipe(RECIPE)
    os.mkfifo(tmp_path / "in.jsonl")
    first = connector("run", recipe, "--json")
    writer = _open_writer_when_read(tmp_path / "in.jsonl")
    try:
        # The same recipe, its state moved: a different database, the same recipe.
        monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
        second = connector("run", recipe, "--json")
        # Left running, it went on alongside the first: the assertions below say so.
        with contextlib.suppress(subprocess.TimeoutExpired):
            second.wait(timeout=20)
        os.set_blocking(writer, True)
        os.write(writer, "".join(json.dumps(r) + "\n" for r in ROWS).encode())
    finally:
        os.close(writer)
    first_out, first_err = first.communicate(timeout=60)
    second_out, second_err = second.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert json.loads(first_out)["outcomes"]["written"] == len(ROWS)
    assert second.returncode == 3, second_out
    assert f"another run of locked ({recipe.resolve()}) is in progress" in second_err
    assert f"process {first.pid}" in second_err
    assert len(second_err.strip().splitlines()) == 1
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert sorted(line["id"] for line in lines) == sorted(r["id"] for r in ROWS)  # none twice
    assert not (tmp_path / "elsewhere.db").exists()  # the second run stopped before its state


def test_the_lock_is_the_recipes_through_a_symlink_but_not_another_checkouts(
    tmp_path, lock_dir
) -> None:
    checkout = tmp_path / "checkout"
    other = tmp_path / "other-checkout"
    for folder in (checkout, other):
        folder.mkdir()
        (folder / "recipe.yaml").write_text(RECIPE)
    (tmp_path / "link.yaml").symlink_to(checkout / "recipe.yaml")
    with run_lock(checkout / "recipe.yaml", "locked"):
        held = pytest.raises(RunInProgressError, match=f"process {os.getpid()}, since ")
        with held, run_lock(tmp_path / "link.yaml", "locked"):
            pass
        with run_lock(other / "recipe.yaml", "locked"):  # another checkout: its own state
            pass
    with run_lock(tmp_path / "link.yaml", "locked"):  # released when the run ended
        pass


def test_with_wait_a_second_run_waits_for_the_first_then_runs(
    write_recipe, invoke, tmp_path, lock_dir
) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]))
    recipe = write_recipe(RECIPE)
    held, released = threading.Event(), list[float]()

    def first_run() -> None:
        with run_lock(recipe, "locked"):
            held.set()
            time.sleep(0.3)
            released.append(time.monotonic())

    holder = threading.Thread(target=first_run)
    holder.start()
    held.wait(10)
    try:
        result = invoke("run", recipe, "--wait", "--json")
    finally:
        holder.join()
    assert result.exit_code == 0, result.output
    assert released
    assert released[0] <= time.monotonic()
    assert json.loads(result.stdout)["outcomes"]["written"] == 3


def test_the_lock_directory_is_per_user(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CONNECTOR_LOCK_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    assert lock_directory() == tmp_path / "state-home" / "connector" / "locks"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert lock_directory() == tmp_path / "home" / ".local" / "state" / "connector" / "locks"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _shared(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode) & 0o077


@pytest.mark.usefixtures("permissive_umask")
def test_state_files_and_locks_are_owner_only_from_their_creation(
    write_recipe, invoke, tmp_path, lock_dir
) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]))
    recipe = write_recipe(RECIPE)
    result = invoke("run", recipe)
    assert result.exit_code == 0, result.output
    state = tmp_path / ".connector"
    made = [
        state / "state.db",
        state / "locks" / "locked.lock",
        *lock_dir.glob("*.lock"),
    ]
    made += [p for p in state.glob("state.db-*")]  # SQLite's journal files, while they last
    assert len(made) >= 3
    assert {str(p.relative_to(tmp_path)): _shared(p) for p in made} == {
        str(p.relative_to(tmp_path)): 0 for p in made
    }
    for directory in (state / "locks", lock_dir):
        assert _shared(directory) == 0


@pytest.mark.usefixtures("permissive_umask")
def test_a_state_file_an_older_version_left_readable_is_tightened(
    write_recipe, invoke, tmp_path, lock_dir
) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]))
    recipe = write_recipe(RECIPE)
    assert invoke("run", recipe).exit_code == 0
    database = tmp_path / ".connector" / "state.db"
    database.chmod(0o644)
    assert invoke("state", "show", recipe).exit_code == 0
    assert _shared(database) == 0
