"""`connector worker` on one host (SQLite state): the schedule key, what --once runs, and the
errors that name where a recipe is wrong."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from core.worker.schedule import latest_due, next_due
from tests.connectors.virtuous.support import Virtuous, serving
from tests.core.worker.support import clock_from, gift_ids, scheduled_gifts

HOURLY = "0 * * * *"


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch) -> Iterator[Virtuous]:
    with serving(monkeypatch) as emulator:
        yield emulator


def test_once_runs_what_is_due_and_a_second_look_finds_it_done(
    tmp_path: Path, virtuous: Virtuous, invoke: Callable[..., Result]
) -> None:
    folder = scheduled_gifts(tmp_path / "recipes", recipes=2, gifts=30, batch=10)
    first = invoke("worker", "--dir", folder, "--once")
    assert first.exit_code == 0, first.output
    assert "connector worker: gifts-0 (due " in first.stderr
    assert "): 30 written" in first.stderr
    assert len(gift_ids(virtuous)) == 60
    second = invoke("worker", folder / "gifts-0.yaml", folder / "gifts-1.yaml", "--once")
    assert second.exit_code == 0, second.output
    # one line, so a cron log shows the worker looked
    assert second.stderr.startswith("connector worker: nothing due now; the next run is gifts-")
    assert second.stderr.endswith(" UTC\n")
    assert second.stderr.count("\n") == 1


def test_a_recipe_of_the_folder_it_will_not_run_needs_none_of_its_secrets(
    tmp_path: Path, virtuous: Virtuous, invoke: Callable[..., Result], monkeypatch
) -> None:
    # A folder such as the shipped recipes/: most have no schedule, and their keys are not set.
    monkeypatch.delenv("PAYPAL_API_KEY", raising=False)
    folder = scheduled_gifts(tmp_path / "recipes", recipes=1, gifts=3, batch=10)
    (folder / "by-hand.yaml").write_text(
        "version: 1\nname: by-hand\n"
        "source: {use: file.jsonl, with: {path: '${PAYPAL_API_KEY}.jsonl'}}\n"
        "sink: {use: file.jsonl, with: {path: out.jsonl}}\n"
    )
    result = invoke("worker", "--dir", folder, "--once")
    assert result.exit_code == 0, result.output
    assert "): 3 written" in result.stderr
    assert "PAYPAL_API_KEY" not in result.output


def test_a_schedule_that_is_no_cron_names_its_line(
    tmp_path: Path, virtuous: Virtuous, invoke: Callable[..., Result]
) -> None:
    folder = scheduled_gifts(tmp_path, recipes=1, gifts=1, batch=10)
    path = folder / "gifts-0.yaml"
    path.write_text(path.read_text().replace('"* * * * *"', '"every 15 minutes"'))
    result = invoke("worker", path, "--once")
    assert result.exit_code == 2
    assert f"{path}:3:1: schedule: " in result.stderr
    assert "'every 15 minutes' is not a cron schedule; write five fields" in result.stderr


def test_a_recipe_without_a_schedule_is_refused_by_name(
    tmp_path: Path, virtuous: Virtuous, invoke: Callable[..., Result]
) -> None:
    folder = scheduled_gifts(tmp_path, recipes=1, gifts=1, batch=10)
    path = folder / "gifts-0.yaml"
    path.write_text(path.read_text().replace('schedule: "* * * * *"\n', ""))
    result = invoke("worker", path, "--once")
    assert result.exit_code == 2
    assert f"{path}: no schedule: to run it on" in result.stderr
    nothing = invoke("worker", "--dir", folder, "--once")
    assert nothing.exit_code == 2
    assert "no recipe in it has a schedule:" in nothing.stderr


def test_a_webhook_recipe_takes_no_schedule(write_recipe, invoke: Callable[..., Result]) -> None:
    path = write_recipe(
        """
        version: 1
        name: hooks
        schedule: "*/5 * * * *"
        source: {use: stripe.webhook, with: {secret: whsec_x, api_key: sk_test_x}}
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        """
    )
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "schedule: runs a polled source, but stripe.webhook takes webhooks" in result.stderr


def test_due_times_are_the_schedules_firings_in_utc() -> None:
    noon = 1_764_504_000.0  # 2025-11-30T12:00:00Z
    assert latest_due("*/15 * * * *", noon) == noon
    assert latest_due("*/15 * * * *", noon + 899) == noon
    assert latest_due("0 2 * * *", noon) == noon - 10 * 3600
    assert next_due("*/15 * * * *", noon) == noon + 900


def test_a_run_that_stops_is_told_the_others_still_run_and_it_is_tried_again_later(
    tmp_path: Path,
    virtuous: Virtuous,
    invoke: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    move_on = clock_from(monkeypatch, 1_796_040_005.0)  # 2026-11-30T12:00:05Z
    folder = scheduled_gifts(tmp_path / "recipes", recipes=2, gifts=5, batch=10, schedule=HOURLY)
    (folder / "donations-0.csv").unlink()
    result = invoke("worker", "--dir", folder, "--once")
    assert result.exit_code == 3
    assert "connector worker: gifts-0 (due 2026-11-30T12:00:00Z) stopped: " in result.stderr
    assert "donations-0.csv" in result.stderr
    assert "; failed once, next try at 2026-11-30T12:01:0" in result.stderr  # a minute later
    assert "gifts-1 (due " in result.stderr
    assert len(gift_ids(virtuous)) == 5
    # Its input back, a look before its next try leaves it (was: tried at every look).
    scheduled_gifts(tmp_path / "recipes", recipes=1, gifts=5, batch=10, schedule=HOURLY)
    waits = invoke("worker", "--dir", folder, "--once")
    assert waits.exit_code == 0, waits.output
    assert waits.stderr.startswith(
        "connector worker: nothing due now; the next run is a retry of gifts-0 (failed once),"
        " at 2026-11-30 12:01:0"
    )
    move_on(60)
    again = invoke("worker", "--dir", folder, "--once")
    assert again.exit_code == 0, again.output
    assert "gifts-0 (due 2026-11-30T12:00:00Z): 5 written" in again.stderr
    assert "gifts-1" not in again.stderr
    assert len(gift_ids(virtuous)) == 10
