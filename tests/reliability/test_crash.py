"""Standing crash suite: syncs killed with SIGKILL at seeded points, then run again to completion.

Three flows, each the shipped recipe pointed at a test folder: CSV -> Virtuous, Stripe ->
Virtuous (both emulators serve from threads of this process, so they outlive the killed run)
and CSV -> JSONL. Each case kills one run at a point of :mod:`tests.reliability.kill_points`
(mid-read, a batch marked in flight, a request Virtuous processed whose answer was never read,
the sink's answer before its commit, around a commit, lines appended but not committed), at an
Nth hit drawn from a fixed seed among the hits a clean run makes; a third of the cases kill the
next run too (during the recovery of what was in flight, or early). Then the recipe runs to
completion, and once more. The end state must be exact: every gift once in the destination
with its amount and currency, nothing lost, nothing stray, no dead letter and no record left in
flight, and the completed runs' reports count (with their money) exactly the gifts no killed
run had committed. A final run writes nothing.

``CONNECTOR_SOAK=1`` runs many more cases on larger inputs; ``CONNECTOR_RELIABILITY_SEED``
draws other points.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from connectors.stripe.emulator.app import EmulatorSettings as StripeSettings
from connectors.stripe.emulator.app import create_app as stripe_app
from core.emulation import EmulatorServer
from tests.connectors.stripe.conftest import KEY as STRIPE_KEY
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, running
from tests.reliability import kill_points
from tests.reliability.support import (
    PROJECTS,
    SOAK,
    TALLY,
    Money,
    as_held,
    csv_to_jsonl,
    csv_to_virtuous,
    donations_csv,
    jsonl_held,
    killed_run,
    ledger,
    money_of,
    reported,
    reported_money,
    rng,
    run_json,
    stripe_charges,
    stripe_to_virtuous,
    untold,
    virtuous_held,
)
from tests.reliability.support import assert_held_exactly as held_exactly

CASES = 80 if SOAK else 22  # per flow
RECORDS = 150 if SOAK else 40
BATCH = 7  # not a divisor of RECORDS: the last batch is short
#: What Virtuous does to the first run of a "faulty" case: it loses answers to requests it
#: processed, and fails others, so the kill meets records whose fate the run could not know.
FAULTS = {"lost_response_rate": 0.3, "error_rate": 0.2}


@dataclass(frozen=True)
class Flow:
    name: str
    recipe: str  # the shipped recipe's name (also the state's recipe name)
    source: str  # the transactionSource its gifts carry
    points: tuple[str, ...]  # where the first run is killed
    again: tuple[str, ...]  # where the next run may be killed too
    faults: bool = False  # whether the first run may meet Virtuous's faults too


VIRTUOUS_POINTS = ("read", "mark", "sent", "answered", "commit", "committed")
FLOWS = {
    flow.name: flow
    for flow in (
        Flow(
            "csv-virtuous",
            "csv-donations-to-virtuous-gifts",
            "CSV Import",
            VIRTUOUS_POINTS,
            ("recover", "mark", "sent", "commit"),
            faults=True,
        ),
        Flow(
            "stripe-virtuous",
            "stripe-charges-to-virtuous-gifts",
            "Stripe",
            ("window", *VIRTUOUS_POINTS),
            ("recover", "window", "sent", "commit"),
            faults=True,
        ),
        Flow(
            "csv-jsonl",
            "csv-donations-to-jsonl",
            "CSV Import",
            # No "mark": a file sink cuts the file to its committed size when it opens, so it
            # undoes what a stopped run wrote without marking anything in flight.
            ("read", "line", "synced", "answered", "commit", "committed"),
            ("line", "synced", "commit"),
        ),
    )
}


@dataclass(frozen=True)
class Case:
    """One kill (or two) of one flow; the Nth hit of the first is drawn once the flow's hits
    are counted."""

    flow: Flow
    number: int
    point: str
    again: tuple[str, int] | None
    faulty: bool  # Virtuous loses answers and fails requests while the first run goes

    @property
    def id(self) -> str:
        second = f"+{self.again[0]}#{self.again[1]}" if self.again else ""
        return f"{self.number:03d}-{self.point}{second}{'-faulty' if self.faulty else ''}"


def plan(flow: Flow) -> list[Case]:
    """The flow's seeded cases: every point in turn (in a seeded order), a third killed twice."""
    dice = rng("plan", flow.name)
    order = list(flow.points)
    dice.shuffle(order)
    cases = []
    for number in range(CASES):
        again = None
        if dice.random() < 1 / 3:
            again = (dice.choice(flow.again), dice.randint(1, 3))
        faulty = flow.faults and dice.random() < 1 / 6
        cases.append(Case(flow, number, order[number % len(order)], again, faulty))
    return cases


def cases_of(name: str) -> Any:
    cases = plan(FLOWS[name])
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


# --- the services, serving from this process while the runs are killed ---------------------


@pytest.fixture(scope="module")
def virtuous_server() -> Iterator[Virtuous]:
    with running() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(stripe_app(StripeSettings(api_keys=[STRIPE_KEY]))) as server:
        yield server


@pytest.fixture
def virtuous(virtuous_server: Virtuous, monkeypatch: pytest.MonkeyPatch) -> Virtuous:
    virtuous_server.control("POST", "reset")
    virtuous_server.control("POST", "seed", json={"projects": PROJECTS})
    monkeypatch.setenv("VIRTUOUS_BASE_URL", virtuous_server.url)
    monkeypatch.setenv("VIRTUOUS_API_KEY", VIRTUOUS_KEY)
    return virtuous_server


@pytest.fixture
def stripe(stripe_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    httpx.post(f"{stripe_server.url}/_emulator/reset", timeout=30).raise_for_status()
    monkeypatch.setenv("STRIPE_BASE_URL", stripe_server.url)
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
    return stripe_server.app.state.store  # type: ignore[attr-defined]


# --- one case ---------------------------------------------------------------------------------

_hits: dict[str, Counter[str]] = {}


def hits_of(
    flow: Flow,
    prepare: Callable[[Path], Path],
    fresh: Callable[[], None],
    tmp: Path,
    invoke: Callable[..., Result],
) -> Counter[str]:
    """How often a clean run of the flow hits each point (counted once per session)."""
    if flow.name not in _hits:
        folder = tmp / "census"
        folder.mkdir()
        with kill_points.counting(list(flow.points)) as hits:
            run_json(invoke, prepare(folder))
        assert all(hits[p] for p in flow.points), f"a clean run never reached: {hits}"
        _hits[flow.name] = Counter(hits)
        fresh()
    return _hits[flow.name]


def survive(
    case: Case,
    recipe: Path,
    hits: Counter[str],
    invoke: Callable[..., Result],
    virtuous: Virtuous | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Kill the run at the case's point(s), then run to completion and once more. Returns the
    completed runs' reports and the ledger keys the killed runs committed."""
    nth = rng("nth", case.flow.name, case.number).randint(1, hits[case.point])
    if case.faulty:
        assert virtuous is not None
        virtuous.control("POST", "faults", json={**FAULTS, "seed": case.number})
    killed = killed_run(recipe, [(case.point, nth)])
    if case.faulty:
        virtuous.control("POST", "faults", json=dict.fromkeys(FAULTS, 0))
        failed = [r for r in virtuous.requests() if r["status"] is None or r["status"] >= 500]
        TALLY.faulted["during kills"] += len(failed)
    assert killed.returncode == -signal.SIGKILL, (case.point, nth, killed.stderr[-2000:])
    TALLY.kills[case.flow.name] += 1
    reports, told = [], ledger(recipe, case.flow.recipe).keys
    if case.again is not None:
        second = killed_run(recipe, [case.again])
        if second.returncode == -signal.SIGKILL:
            TALLY.kills[case.flow.name] += 1
            told = ledger(recipe, case.flow.recipe).keys
        else:  # the point was not reached: a run like any other
            assert second.returncode == 0, second.stderr[-2000:]
            reports.append(json_report(second.stdout))
    rerun = run_json(invoke, recipe)
    assert rerun["ok"], rerun["problems"]
    final = run_json(invoke, recipe)
    assert (reported([final], "written"), reported([final], "updated")) == (0, 0)
    assert final["ok"], final["problems"]
    return [*reports, rerun, final], told


def json_report(stdout: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(stdout)
    return parsed


def assert_exact(
    case: Case,
    recipe: Path,
    held: list[tuple[str, Money]],
    wanted: dict[str, Money],
    reports: list[dict[str, Any]],
    told: list[str],
) -> None:
    held_exactly(held, as_held(wanted, case.flow.source))
    state = ledger(recipe, case.flow.recipe)
    assert (state.dead_letters, state.in_flight) == ([], [])
    assert sorted(state.keys) == sorted(wanted)
    # What no report could tell (a killed run committed it) plus what the reports told is
    # exactly what the destination holds, money included.
    due = untold(wanted, told)
    assert reported(reports, "written") == len(due)
    assert reported_money(reports) == money_of(due.values())


# --- the flows --------------------------------------------------------------------------------


@cases_of("csv-virtuous")
def test_csv_to_virtuous_killed_anywhere_ends_exact(
    case: Case, virtuous: Virtuous, invoke, tmp_path, tmp_path_factory
) -> None:
    wanted: dict[str, Money] = {}

    def prepare(folder: Path) -> Path:
        wanted.clear()
        wanted.update(donations_csv(folder / "donations.csv", RECORDS, "crash"))
        return csv_to_virtuous(folder, BATCH)

    def fresh() -> None:
        virtuous.control("POST", "reset")
        virtuous.control("POST", "seed", json={"projects": PROJECTS})

    hits = hits_of(case.flow, prepare, fresh, tmp_path_factory.mktemp("census"), invoke)
    recipe = prepare(tmp_path)
    reports, told = survive(case, recipe, hits, invoke, virtuous)
    assert_exact(case, recipe, virtuous_held(virtuous), wanted, reports, told)


@cases_of("stripe-virtuous")
def test_stripe_to_virtuous_killed_anywhere_ends_exact(
    case: Case, virtuous: Virtuous, stripe: Any, stripe_server, invoke, tmp_path, tmp_path_factory
) -> None:
    wanted: dict[str, Money] = {}

    def prepare(folder: Path) -> Path:
        wanted.clear()
        wanted.update(stripe_charges(stripe, RECORDS, "crash"))
        return stripe_to_virtuous(folder, BATCH)

    def fresh() -> None:
        virtuous.control("POST", "reset")
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        httpx.post(f"{stripe_server.url}/_emulator/reset", timeout=30).raise_for_status()

    hits = hits_of(case.flow, prepare, fresh, tmp_path_factory.mktemp("census"), invoke)
    recipe = prepare(tmp_path)
    reports, told = survive(case, recipe, hits, invoke, virtuous)
    assert_exact(case, recipe, virtuous_held(virtuous), wanted, reports, told)


@cases_of("csv-jsonl")
def test_csv_to_jsonl_killed_anywhere_ends_exact(
    case: Case, invoke, tmp_path, tmp_path_factory
) -> None:
    wanted: dict[str, Money] = {}

    def prepare(folder: Path) -> Path:
        wanted.clear()
        wanted.update(donations_csv(folder / "donations.csv", RECORDS, "crash"))
        return csv_to_jsonl(folder, BATCH)

    hits = hits_of(case.flow, prepare, lambda: None, tmp_path_factory.mktemp("census"), invoke)
    recipe = prepare(tmp_path)
    reports, told = survive(case, recipe, hits, invoke)
    held = jsonl_held(tmp_path / "out" / "gifts.jsonl")
    assert_exact(case, recipe, held, wanted, reports, told)
