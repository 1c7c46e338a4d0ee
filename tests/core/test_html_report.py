"""`connector report RECIPE --html FILE`: one self-contained page whose numbers, as a browser
renders them (headless Chromium), are the state store's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from connectors.files.jsonl_file import JsonlSink
from core.html_report import render
from core.html_report_data import gather
from core.outcomes import Outcome
from core.recipe import load_recipe
from core.state import Batch, DeadLetter, open_state
from tests.connectors.virtuous.support import donations_csv, serving
from tests.connectors.virtuous.test_designations import PROJECTS, designated

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def history(tmp_path: Path, write_recipe, invoke, monkeypatch) -> Path:
    """Two runs of a designated gifts recipe: gifts over three days and two funds, one changed
    after it was written (needs review), one naming no project (invalid)."""
    recipe = write_recipe(designated())
    with serving(monkeypatch) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        first = {"g-2": {"fund": "SCHOLARSHIP"}, "g-3": {"date": "2025-03-02"}}
        donations_csv(tmp_path / "donations.csv", 4, **first)
        assert invoke("run", recipe).exit_code == 0
        second = {**first, "g-2": {"fund": "SCHOLARSHIP", "cents": "5000"}}
        second |= {"g-5": {"fund": "NOPE"}, "g-6": {"date": "2025-03-03"}}
        donations_csv(tmp_path / "donations.csv", 6, **second)
        assert invoke("run", recipe).exit_code == 1
    return recipe


class _Numbers(HTMLParser):
    """The text of every element that carries a ``data-`` attribute, by attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [f"{k}={v}" for k, v in attrs if k.startswith("data-")]
        self._open = names
        for name in names:
            self.found.setdefault(name, []).append("")

    def handle_data(self, data: str) -> None:
        for name in self._open:
            self.found[name][-1] += data.strip()

    def handle_endtag(self, tag: str) -> None:
        self._open = []


def _numbers(html: str) -> dict[str, list[str]]:
    parser = _Numbers()
    parser.feed(html)
    return parser.found


def test_the_page_is_self_contained_and_counts_what_the_store_holds(
    tmp_path, write_recipe, invoke, monkeypatch, registry
) -> None:
    recipe = history(tmp_path, write_recipe, invoke, monkeypatch)
    page = tmp_path / "report.html"
    result = invoke("report", recipe, "--html", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert not re.search(r"(src|href)=|@import|url\(|<script", html)  # nothing fetched
    found = _numbers(html)
    expected = _from_the_store(recipe, registry)
    assert found["data-kpi=runs"] == [str(expected["runs"])]
    assert found["data-kpi=written"] == [str(expected["written"])]
    assert found["data-kpi=money-USD"] == [expected["USD"]]
    assert found["data-kpi=dead-letters"] == [str(expected["dead_letters"])]
    assert found["data-kpi=pending"] == [str(expected["pending"])]
    assert found["data-money-day=2025-03-02"] == ["10.03"]
    assert found["data-money-designation=SCHOLARSHIP"] == ["10.02"]
    assert sorted(found["data-dead-letter-group=invalid"]) == ["1"]
    assert found["data-dead-letter-group=needs_review"] == ["1"]
    # g-2 changed after it was written: a retry would find it changed again, so the page says
    # what dlq list says (a person handles it by hand, then resolves it); g-5 is retried
    assert (
        "1 left for a person, who does in the service by hand what each reason says, then"
        " <code>connector dlq resolve RECIPE KEY...</code> records it"
    ) in html
    assert "<code>connector dlq retry</code> sends 1 again" in html


def _from_the_store(recipe_path: Path, registry) -> dict[str, object]:
    recipe = load_recipe(recipe_path, registry)
    store = open_state(recipe.base_dir / ".connector" / "state.db")
    try:
        runs = store.runs(recipe.name)
        written = sum(run["outcomes"]["written"] for run in runs)
        usd = sum(Decimal(run["money"].get("USD", "0")) for run in runs)
        letters = store.dead_letters(recipe.name)
        pending = [
            e for e in store.ledger_entries(recipe.name) if recipe.sink_class.pending(e.sink_key)
        ]
    finally:
        store.close()
    return {
        "runs": len(runs),
        "written": written,
        "USD": f"{usd:,}",
        "dead_letters": len(letters),
        "pending": len(pending),
    }


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt install chromium)"
)
def test_chromium_renders_the_numbers_of_the_store(
    tmp_path, write_recipe, invoke, monkeypatch, registry
) -> None:
    recipe = history(tmp_path, write_recipe, invoke, monkeypatch)
    page = tmp_path / "report.html"
    assert invoke("report", recipe, "--html", page).exit_code == 0
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2200", page.as_uri())
    assert shot.stat().st_size > 10_000  # a page was drawn, not a blank
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    found = _numbers(dom)
    expected = _from_the_store(recipe, registry)
    assert found["data-kpi=runs"] == [str(expected["runs"])]
    assert found["data-kpi=written"] == [str(expected["written"])]
    assert found["data-kpi=money-USD"] == [expected["USD"]]
    assert found["data-kpi=dead-letters"] == [str(expected["dead_letters"])]
    assert found["data-kpi=pending"] == [str(expected["pending"])]
    assert "<svg" in dom


def _chromium(tmp_path: Path, *args: str) -> str:
    """Headless Chromium on a local file, kept off the network (no updates, no sync)."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_run_that_stopped_is_kept_with_why(tmp_path, write_recipe, invoke) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: files
        source: {use: file.jsonl, with: {path: missing.jsonl, key: id}}
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        """
    )
    assert invoke("run", recipe).exit_code == 3
    store = open_state(tmp_path / ".connector" / "state.db")
    try:
        [run] = store.runs("files")
    finally:
        store.close()
    assert "missing.jsonl" in run["stopped"]
    page = tmp_path / "report.html"
    assert invoke("report", recipe, "--html", page).exit_code == 0
    html = page.read_text()
    assert ">stopped</span>" in html
    assert "Pending in" not in html  # a file sink has no queue for records to wait in
    assert "data-kpi=pending" not in _numbers(html)


def test_dead_letters_of_one_cause_group_together(tmp_path) -> None:
    store = open_state(tmp_path / "state.db")
    try:
        letters = [
            DeadLetter(
                "m-1", Outcome.NEEDS_REVIEW, "no Virtuous contact matches a@x.org", None, {}
            ),
            DeadLetter(
                "m-2", Outcome.NEEDS_REVIEW, "no Virtuous contact matches b@y.org", None, {}
            ),
            DeadLetter("m-3", Outcome.INVALID, "amount: '12,50' is not a number", "amount", {}),
        ]
        store.commit("contacts", Batch(dead_letters=letters))
        data = gather("contacts", "file.jsonl", JsonlSink, store, "2026-01-01T00:00:00+00:00")
    finally:
        store.close()
    assert [(g.outcome, g.count, g.keys) for g in data.dead_letters] == [
        ("needs_review", 2, ["m-1", "m-2"]),
        ("invalid", 1, ["m-3"]),
    ]
    assert data.dead_letters[0].reason == "no Virtuous contact matches a@x.org"
    html = render(data)
    # contacts no one matches: a person reads why (create them, or match them by hand)
    assert "2 need a person to read why and act" in html
    assert "<code>connector dlq retry</code> sends 1 again" in html
    assert "dlq resolve" not in html


def test_runs_that_wrote_no_money_are_not_blamed_on_a_missing_map(tmp_path) -> None:
    store = open_state(tmp_path / "state.db")
    try:
        data = gather("gifts", "file.jsonl", JsonlSink, store, "2026-01-01T00:00:00+00:00")
    finally:
        store.close()
    html = render(data)
    assert "No money was written" in html
    assert "without map" not in html  # the recipe may well have one: its runs wrote no money


def test_gifts_another_state_submitted_are_unchanged_in_the_run_the_state_and_the_page(
    tmp_path, write_recipe, invoke, monkeypatch
) -> None:
    """A gift Virtuous holds already, sent by another state database (a restored backup, a
    second machine), was not written by this one: the run, `state show` and the report page all
    say unchanged, and the page says why its pending gifts outnumber what it wrote."""
    recipe = write_recipe(designated())
    with serving(monkeypatch) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        donations_csv(tmp_path / "donations.csv", 4)
        other = tmp_path / "other-state.db"
        assert invoke("run", recipe, "--state", other).exit_code == 0
        ours = tmp_path / "state.db"
        run = invoke("run", recipe, "--state", ours, "--json")
        assert run.exit_code == 0, run.output
        counted = json.loads(run.stdout)["outcomes"]
        assert {k: n for k, n in counted.items() if n} == {"unchanged": 4}
        shown = json.loads(invoke("state", "show", recipe, "--state", ours, "--json").stdout)
        assert shown["ledger"]["outcomes"] == {"unchanged": 4}
        page = tmp_path / "report.html"
        assert invoke("report", recipe, "--state", ours, "--html", page).exit_code == 0
    found = _numbers(page.read_text())
    assert found["data-kpi=written"] == ["0"]
    assert found["data-kpi=pending"] == ["4"]
    assert "4 of them were in Virtuous already when this state sent them" in page.read_text()
