"""givebutter.transactions against the Givebutter emulator, through the CLI into a JSONL file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from click.testing import Result

from connectors.givebutter.emulator.app import EmulatorSettings, GivebutterState, create_app
from core.emulation import EmulatorServer
from tests.conftest import read_jsonl
from tests.connectors.conftest import Runs, assert_refused_without_showing, fresh_state

KEY = "gb-live-7f3a9c2e51d84b06"

RECIPE = """
version: 1
name: givebutter-gifts
source:
  use: givebutter.transactions
  with: {api_key: "${GB_KEY}", base_url: "${GB_URL}", per_page: 3}
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(create_app(EmulatorSettings(api_keys=[KEY]))) as running:
        yield running


@pytest.fixture
def givebutter(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> GivebutterState:
    state: GivebutterState = fresh_state(server, monkeypatch, GB_KEY=KEY, GB_URL=server.url)
    return state


@pytest.fixture
def sync(recipe_runs: Runs):
    """The recipe's directory, and a function that runs it once and returns the JSON report."""
    return recipe_runs(RECIPE)


def list_requests(state: GivebutterState) -> list[dict]:
    return [r for r in state.requests if r["path"] == "/v1/transactions"]


def test_every_page_is_read_and_the_fields_kept(givebutter: GivebutterState, sync) -> None:
    seeded = givebutter.seed(count=7)
    tmp, run = sync
    report = run()
    assert report["outcomes"]["written"] == 7
    out = read_jsonl(tmp / "out.jsonl")
    assert sorted(r["id"] for r in out) == sorted(r["id"] for r in seeded)
    first = next(r for r in out if r["id"] == seeded[0]["id"])
    for field in (
        "amount",
        "fee",
        "fee_covered",
        "is_recurring",
        "plan_id",
        "fund_code",
        "campaign_code",
        "contact_id",
        "transactions",  # captured, refunded, refunded_at: Givebutter nests them here
    ):
        assert first[field] == seeded[0][field]
    requests = list_requests(givebutter)
    # links.next carries only ?page=N; the page size and sort order must survive anyway.
    assert [r["query"].get("page", "1") for r in requests] == ["1", "2", "3"]
    assert all(r["query"]["per_page"] == "3" for r in requests)
    assert all(r["query"]["sortBy"] == "created_at" for r in requests)
    assert "updatedAfter" not in requests[0]["query"]


def test_a_second_run_writes_nothing_new(givebutter: GivebutterState, sync) -> None:
    seeded = givebutter.seed(count=5)
    _, run = sync
    run()
    report = run()
    assert report["outcomes"]["written"] == 0
    assert report["outcomes"]["updated"] == 0
    newest = max(r["updated_at"] for r in seeded)
    since = list_requests(givebutter)[-1]["query"]["updatedAfter"]
    # The cursor is the newest updated_at, re-read from 5 minutes before (the overlap).
    assert since < newest.replace("+00:00", "Z")
    assert report["records_read"] == 1  # only the newest falls inside the overlap


def test_a_changed_transaction_becomes_an_update(givebutter: GivebutterState, sync) -> None:
    seeded = givebutter.seed(count=4)
    tmp, run = sync
    run()
    givebutter.refund(seeded[1]["id"])
    givebutter.seed(count=1)
    report = run()
    assert report["outcomes"]["updated"] == 1
    assert report["outcomes"]["written"] == 1
    changed = [r for r in read_jsonl(tmp / "out.jsonl") if r["id"] == seeded[1]["id"]]
    assert [r["transactions"][0]["refunded"] for r in changed] == [False, True]


@pytest.mark.parametrize(
    ("break_it", "field"),
    [
        (lambda r: r.pop("transactions"), "'transactions' missing"),
        (lambda r: r["transactions"][0].update(refunded="no"), "'transactions.0.refunded'"),
        (lambda r: r["transactions"].clear(), "'transactions'"),
        (lambda r: r.update(amount="25.00"), "'amount'"),
    ],
)
def test_a_transaction_off_the_published_shape_is_dead_lettered_naming_the_field(
    givebutter: GivebutterState,
    sync,
    invoke: Callable[..., Result],
    break_it: Callable[[dict], object],
    field: str,
) -> None:
    """A refund flag that is missing or not a boolean must not read as "not refunded": the
    record is dead-lettered with the field named (and logged once), and the rest are read."""
    broken, *fine = givebutter.seed(count=5)
    also_broken = fine.pop()
    break_it(broken)
    break_it(also_broken)
    tmp, _ = sync
    result = invoke("run", tmp / "recipe.yaml", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1, result.output
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (3, 2)
    problems = {p["key"]: p["reason"] for p in report["problems"]}
    assert set(problems) == {broken["id"], also_broken["id"]}
    assert all(field in reason for reason in problems.values())
    assert sorted(r["id"] for r in read_jsonl(tmp / "out.jsonl")) == sorted(r["id"] for r in fine)
    # Logged once per run, not once per record.
    assert result.stderr.count("Givebutter: records whose") == 1, result.stderr


def test_the_cursor_moves_past_a_broken_newest_transaction(
    givebutter: GivebutterState, sync, invoke: Callable[..., Result]
) -> None:
    """The newest transaction breaking the contract must not keep the cursor back: the next run
    asks only for what changed since the readable ones (with the overlap)."""
    *older, newest = givebutter.seed(count=3)
    del newest["transactions"]
    tmp, _ = sync
    assert invoke("run", tmp / "recipe.yaml", "--json").exit_code == 1
    invoke("run", tmp / "recipe.yaml", "--json")
    since = list_requests(givebutter)[-1]["query"].get("updatedAfter")
    assert since is not None
    assert since < max(r["updated_at"] for r in older).replace("+00:00", "Z")


def test_a_refused_key_stops_the_run_naming_givebutter(
    givebutter: GivebutterState,
    sync,
    invoke: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    givebutter.seed(count=2)
    wrong = "gb-revoked-0c1d2e3f4a5b6978"
    monkeypatch.setenv("GB_KEY", wrong)
    tmp, _ = sync
    outcome = invoke("run", tmp / "recipe.yaml")
    assert_refused_without_showing(outcome, "Givebutter", "Unauthenticated.", wrong, tmp)


def test_server_errors_are_retried(givebutter: GivebutterState, sync) -> None:
    givebutter.seed(count=4)
    givebutter.fail_next.extend([503, 502])
    _, run = sync
    report = run()
    assert report["outcomes"]["written"] == 4
    assert [r["status"] for r in list_requests(givebutter)] == [503, 502, 200, 200]


def test_a_429_is_waited_out(givebutter: GivebutterState, sync) -> None:
    givebutter.seed(count=4)
    givebutter.settings.faults.update(rate_limit_storm=1, storm_retry_after=1)
    _, run = sync
    started = time.monotonic()
    report = run()
    assert report["outcomes"]["written"] == 4
    assert givebutter.settings.faults.rate_limit_storm == 0  # the 429 was answered...
    assert time.monotonic() - started >= 1.0  # ...and its Retry-After honoured
