"""donorbox.donations against the Donorbox emulator, through the CLI into a JSONL file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from connectors.donorbox.emulator.app import DonorboxState, EmulatorSettings, create_app, stamp
from connectors.donorbox.emulator.shapes import rendered
from connectors.donorbox.service import describe_error
from core.emulation import EmulatorServer
from tests.conftest import read_jsonl
from tests.connectors.conftest import Runs, assert_refused_without_showing, fresh_state

EMAIL = "ops@example.org"
KEY = "dbx-live-4e8b1c0d9f2a7736"

RECIPE = """
version: 1
name: donorbox-gifts
source:
  use: donorbox.donations
  with: {email: "${DB_EMAIL}", api_key: "${DB_KEY}", base_url: "${DB_URL}", per_page: 3}
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    settings = EmulatorSettings(credentials={EMAIL: KEY})
    with EmulatorServer(create_app(settings)) as running:
        yield running


@pytest.fixture
def donorbox(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> DonorboxState:
    state: DonorboxState = fresh_state(
        server, monkeypatch, DB_EMAIL=EMAIL, DB_KEY=KEY, DB_URL=server.url
    )
    return state


@pytest.fixture
def sync(recipe_runs: Runs):
    """The recipe's directory, and a function that runs it once and returns the JSON report."""
    return recipe_runs(RECIPE)


def queries(state: DonorboxState) -> list[dict[str, str]]:
    return [r["query"] for r in state.requests]


@pytest.mark.parametrize(("count", "pages"), [(7, 3), (6, 3)])
def test_every_page_is_read_and_the_fields_kept(
    donorbox: DonorboxState, sync, count: int, pages: int
) -> None:
    seeded = donorbox.seed(count=count)
    tmp, run = sync
    report = run()
    assert report["outcomes"]["written"] == count
    out = read_jsonl(tmp / "out.jsonl")
    # Oldest first, each exactly as Donorbox sent it.
    settings = donorbox.settings
    assert out == [rendered(r, settings.keys, settings.refund_status) for r in seeded]
    # 7 = 3 + 3 + 1 (a short page ends it); 6 = 3 + 3 + an empty page.
    assert [q["page"] for q in queries(donorbox)] == [str(n) for n in range(1, pages + 1)]
    assert all(q["order"] == "asc" and q["per_page"] == "3" for q in queries(donorbox))
    assert "date_from" not in queries(donorbox)[0]


def test_a_second_run_rereads_only_the_last_days(donorbox: DonorboxState, sync) -> None:
    seeded = donorbox.seed(count=6)
    _, run = sync
    run()
    report = run()
    assert report["outcomes"]["written"] == 0
    assert report["outcomes"]["updated"] == 0
    newest = max(datetime.fromisoformat(r["donation_date"]).date() for r in seeded)
    # date_from has no time: the newest day is read again, and lookback_days (1) before it.
    date_from = newest - timedelta(days=1)
    assert queries(donorbox)[-1]["date_from"] == date_from.isoformat()
    in_window = [
        r for r in seeded if datetime.fromisoformat(r["donation_date"]).date() >= date_from
    ]
    assert report["records_read"] == len(in_window) < len(seeded)


def test_a_refund_becomes_an_update_and_a_new_gift_a_write(donorbox: DonorboxState, sync) -> None:
    seeded = donorbox.seed(count=4)
    tmp, run = sync
    run()
    donorbox.update(seeded[-1]["id"], {"amount_refunded": seeded[-1]["amount"]})
    donorbox.seed(given=[{"donation_date": stamp(datetime.now(UTC))}])
    report = run()
    assert report["outcomes"]["updated"] == 1
    assert report["outcomes"]["written"] == 1
    out = read_jsonl(tmp / "out.jsonl")
    assert [r["amount_refunded"] for r in out if r["id"] == seeded[-1]["id"]] == [
        "0.0",
        seeded[-1]["amount"],
    ]
    assert queries(donorbox)[-1]["date_from"] < date.today().isoformat()


def test_start_leaves_older_donations_out_of_the_first_run(
    donorbox: DonorboxState, write_recipe: Callable[..., Path], invoke: Callable[..., Result]
) -> None:
    seeded = donorbox.seed(count=5)
    start = seeded[2]["donation_date"][:10]
    recipe = write_recipe(RECIPE.replace("per_page: 3}", f"per_page: 3, start: {start}}}"))
    result = invoke("run", recipe, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcomes"]["written"] == 3
    assert queries(donorbox)[0]["date_from"] == start


def test_a_refused_key_stops_the_run_naming_donorbox(
    donorbox: DonorboxState,
    sync,
    invoke: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    donorbox.seed(count=2)
    wrong = "dbx-revoked-5a6b7c8d9e0f1122"
    monkeypatch.setenv("DB_KEY", wrong)
    tmp, _ = sync
    outcome = invoke("run", tmp / "recipe.yaml")
    assert_refused_without_showing(outcome, "Donorbox", "You need to sign in", wrong, tmp)


@pytest.mark.parametrize("dialect", ["json", "html"])
def test_server_errors_are_retried(donorbox: DonorboxState, sync, dialect: str) -> None:
    donorbox.settings.errors = dialect  # type: ignore[assignment]
    donorbox.seed(count=2)
    donorbox.fail_next.extend([500, 503])
    _, run = sync
    report = run()
    assert report["outcomes"]["written"] == 2
    assert [r["status"] for r in donorbox.requests] == [500, 503, 200]


@pytest.mark.parametrize("dialect", ["json", "html"])
def test_a_rate_limit_storm_is_waited_out_and_counted(
    donorbox: DonorboxState, sync, dialect: str
) -> None:
    donorbox.settings.errors = dialect  # type: ignore[assignment]
    donorbox.settings.faults.update(rate_limit_storm=2, storm_retry_after=0)
    donorbox.seed(count=4)
    _, run = sync
    report = run()
    assert report["outcomes"]["written"] == 4
    assert report["rate_limit_waits"] >= 1


@pytest.mark.parametrize("dialect", ["json", "html"])
def test_an_outage_stops_the_run_with_donorboxs_words_not_its_html(
    donorbox: DonorboxState, sync, invoke: Callable[..., Result], dialect: str
) -> None:
    donorbox.settings.errors = dialect  # type: ignore[assignment]
    donorbox.settings.faults.update(error_rate=1.0, error_statuses=[503])
    donorbox.seed(count=1)
    tmp, _ = sync
    result = invoke("run", tmp / "recipe.yaml")
    assert result.exit_code != 0
    said = "Service Unavailable" if dialect == "json" else "something went wrong"
    assert "Donorbox answered 503" in result.stderr
    assert said in result.stderr
    assert "<" not in result.stderr


@pytest.mark.parametrize(
    ("content_type", "body", "said"),
    [
        ("application/json", '{"error": "You need to sign in"}', "You need to sign in"),
        ("application/json", '{"status": 502, "error": "Bad Gateway"}', "Bad Gateway"),
        ("text/plain", "Retry later\n", "Retry later"),
        ("text/html", "<html><title>Oops &amp; co</title></html>", "Oops & co"),
        ("text/html", "<html><body>bare</body></html>", "an HTML page with no heading"),
    ],
)
def test_donorboxs_error_bodies_are_told_in_one_line(
    content_type: str, body: str, said: str
) -> None:
    response = httpx.Response(500, headers={"content-type": content_type}, text=body)
    assert describe_error(response) == said


def test_a_per_page_donorbox_would_ignore_is_refused_before_any_request(
    donorbox: DonorboxState, write_recipe: Callable[..., Path], invoke: Callable[..., Result]
) -> None:
    """Over 100, Donorbox answers 50 a page: the read would take the first page for the last."""
    recipe = write_recipe(RECIPE.replace("per_page: 3}", "per_page: 101}"))
    result = invoke("run", recipe)
    assert result.exit_code == 2, result.output
    assert "per_page" in result.output
    assert donorbox.requests == []
