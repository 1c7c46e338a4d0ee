"""Leases: with Postgres state, a recipe runs in one process at a time across every machine.

A second run is refused naming the holder (exit 3), or waits with ``--wait``; a live run keeps its
lease however long it runs; a run that dies loses it when it expires, and the run that takes over
finishes with nothing lost or doubled; a run that stalled past its lease cannot write any more.
Another machine is played by another state store (and another lock directory: the recipes' local
locks are per machine).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import Result

from core.errors import FatalError, RunInProgressError
from core.outcomes import Outcome
from core.state import Batch, InFlight, open_state
from core.state.lease import Lease
from tests.conftest import read_jsonl, write_jsonl
from tests.connectors.virtuous.support import KEY, Virtuous, running
from tests.core.state.backends import postgres_or_skip
from tests.reliability.support import (
    PROJECTS,
    as_held,
    assert_held_exactly,
    csv_to_virtuous,
    donations_csv,
    killed_run,
    virtuous_held,
)

RECIPE = """
version: 1
name: leased
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  id: record.id
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""

HELD_BY = f"another run of leased is in progress (host {socket.gethostname()}, process"


@pytest.fixture
def url(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONNECTOR_STATE_URL", postgres_url)
    return postgres_url


@pytest.fixture
def recipe(write_recipe: Callable[..., Path], tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "in.jsonl", [{"id": f"r{n}"} for n in range(5)])
    return write_recipe(RECIPE)


def test_a_second_run_exits_3_naming_the_holder_and_writes_nothing(
    url: str, recipe: Path, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    other_machine = open_state(url)
    try:
        with other_machine.lock("leased"):
            result = invoke("run", recipe)
    finally:
        other_machine.close()
    assert result.exit_code == 3
    assert f"{HELD_BY} {os.getpid()}, since " in result.stderr
    assert "expires in" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out.jsonl").exists()
    assert invoke("run", recipe).exit_code == 0  # given back when the holder ended


def test_with_wait_a_second_run_waits_for_the_first_then_runs(
    url: str, recipe: Path, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    other_machine = open_state(url)
    held, released = threading.Event(), []

    def hold() -> None:
        with other_machine.lock("leased"):
            held.set()
            time.sleep(0.5)
            released.append(time.monotonic())

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        result = invoke("run", recipe, "--wait", "--json")
    finally:
        holder.join()
        other_machine.close()
    ended = time.monotonic()
    assert result.exit_code == 0, result.output
    assert released
    assert released[0] <= ended
    assert json.loads(result.stdout)["outcomes"]["written"] == 5
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 5


def test_a_live_run_keeps_its_lease_past_its_length_and_a_dropped_connection(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_LEASE_SECONDS", "1")
    one, two = open_state(url), open_state(url)
    admin = postgres_or_skip()
    try:
        with one.lock("leased"):
            # Every connection of this process dropped (a restarted server, a network cut).
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (f"connector {os.getpid()}",),
            )
            time.sleep(1.5)  # renewed by its heartbeat meanwhile, on a new connection
            with pytest.raises(RunInProgressError, match="in progress"), two.lock("leased"):
                pass
        with two.lock("leased"):  # given back at the end
            pass
    finally:
        one.close()
        two.close()


def test_a_run_that_stalled_past_its_lease_cannot_write_once_another_took_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled, other, third = open_state(url), open_state(url), open_state(url)
    admin, schema = postgres_or_skip(), url.rsplit("%3D", 1)[1]
    item = InFlight("r1", "0" * 64, None, {"id": "r1"}, {"id": "r1"})
    batch = Batch(ledger=[("r1", "0" * 64, None, Outcome.WRITTEN)], settled=["r1"])
    try:
        with ExitStack() as stalled_run:
            stalled_run.enter_context(stalled.lock("leased"))
            stalled.mark_in_flight("leased", [item])  # while it holds the lease: written
            monkeypatch.setattr(Lease, "_renew", lambda self: None)  # its heartbeat stops...
            admin.execute(f"UPDATE {schema}.leases SET expires_at = now() - interval '1 second'")
            with other.lock("leased"):  # ...the lease expires, another machine takes it over
                with pytest.raises(FatalError, match="taken over by another process"):
                    stalled.mark_in_flight("leased", [item])
                with pytest.raises(FatalError, match="taken over by another process"):
                    stalled.commit("leased", batch)
                assert stalled.ledger_entries("leased") == []
                stalled_run.close()  # the stalled run ends: the lease it lost stays the other's
                with pytest.raises(RunInProgressError), third.lock("leased"):
                    pass
    finally:
        for store in (stalled, other, third):
            store.close()


# --- a run killed with SIGKILL, against the Virtuous emulator ---------------------------------


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch) -> Iterator[Virtuous]:
    with running() as emulator:
        emulator.control("POST", "seed", json={"projects": PROJECTS})
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        yield emulator


def test_a_killed_runs_lease_expires_and_the_next_run_finishes_exactly(
    url: str,
    virtuous: Virtuous,
    invoke: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_LEASE_SECONDS", "3")
    wanted = donations_csv(tmp_path / "donations.csv", 40, "lease")
    recipe = csv_to_virtuous(tmp_path, 5)
    # Killed once Virtuous processed its second batch, before the run read the answer.
    killed = killed_run(recipe, [("sent", 2)])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    admin, schema = postgres_or_skip(), url.rsplit("%3D", 1)[1]
    holder = admin.execute(f"SELECT pid FROM {schema}.leases").fetchone()
    assert holder is not None
    assert holder[0] != os.getpid()  # the dead run's, not yet expired

    taken_over = invoke("run", recipe, "--wait", "--json")
    assert taken_over.exit_code == 0, taken_over.output
    assert json.loads(taken_over.stdout)["ok"]
    assert_held_exactly(virtuous_held(virtuous), as_held(wanted, "CSV Import"))
    state = open_state(url)
    try:
        assert sorted(e.key for e in state.ledger_entries(recipe.stem)) == sorted(wanted)
        assert state.in_flight(recipe.stem) == []
    finally:
        state.close()
