"""virtuous.gift_transactions against the emulator: each gift once, inside the rate limit."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.connectors.virtuous.support import KEY, donations_csv, gifts_recipe, report, running

TRANSACTIONS = ("/api/v2/Gift/Transactions", "/api/v2/Gift/Transaction")


@pytest.fixture
def virtuous(monkeypatch):
    with running() as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        yield emulator


def test_gifts_are_submitted_imported_and_never_sent_twice(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 7)
    recipe = write_recipe(gifts_recipe(batch=3))
    first = report(invoke("run", recipe, "--json"))
    assert first["outcomes"]["written"] == 7
    assert first["money"] == {"USD": str(sum(1000 + n for n in range(1, 8)) / 100)}
    assert virtuous.state()["counts"]["pending"] == 7
    assert virtuous.import_now()["giftsCreated"] == 7
    gift = virtuous.gift("Test", "g-3").json()
    assert gift["amount"] == 10.03
    assert gift["giftDate"] == "2025-03-01T00:00:00"
    sent = len([r for r in virtuous.requests() if r["path"] in TRANSACTIONS])
    assert sent == math.ceil(7 / 3)
    second = report(invoke("run", recipe, "--json"))
    assert second["outcomes"]["unchanged"] == 7
    assert len([r for r in virtuous.requests() if r["path"] in TRANSACTIONS]) == sent
    assert virtuous.state()["counts"]["gifts"] == 7


def test_a_record_virtuous_refuses_is_dead_lettered_the_others_written(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 5)
    recipe = write_recipe(gifts_recipe(batch=5))
    # Submitted earlier by someone else: Virtuous refuses the repeated transaction id, and
    # it must not count as a failure (the gift is there) nor be sent again.
    donations_csv(tmp_path / "donations.csv", 1, start=4)
    report(invoke("run", recipe, "--json", "--state", tmp_path / "other.db"))
    donations_csv(tmp_path / "donations.csv", 5, **{"g-2": {"date": "2025-02-30"}})
    result = report(invoke("run", recipe, "--json"))
    assert result["outcomes"] == {**result["outcomes"], "written": 3, "unchanged": 1, "invalid": 1}
    problem = result["problems"][0]
    assert problem["key"] == "g-2"
    assert problem["field"] == "giftDate"
    assert virtuous.import_now()["giftsCreated"] == 4  # g-1, g-3, g-4 (once), g-5
    assert virtuous.gift("Test", "g-4").status_code == 200


def test_a_server_side_refusal_splits_the_batch(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    with running(require_designation_sum=True) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        donations_csv(tmp_path / "donations.csv", 6)
        text = gifts_recipe(batch=6).replace(
            "  giftType: \"'Credit'\"\n",
            "  giftType: \"'Credit'\"\n  designations:\n    - code: record.fund\n"
            "      amountDesignated: \"1 if record.id == 'g-5' else"
            ' record.cents | to_int | minor_to_major(record.currency)"\n',
        )
        result = report(invoke("run", write_recipe(text), "--json"))
        assert result["outcomes"]["written"] == 5
        assert result["outcomes"]["invalid"] == 1
        assert result["problems"][0]["key"] == "g-5"
        assert "Virtuous refused it" in result["problems"][0]["reason"]
        assert emulator.state()["counts"]["pending"] == 5


def test_a_wrong_key_stops_the_run_without_showing_it(
    virtuous, write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("VIRTUOUS_API_KEY", "wrong-key-8a7c1f0e55")
    donations_csv(tmp_path / "donations.csv", 2)
    result = invoke("run", write_recipe(gifts_recipe()))
    assert result.exit_code == 3
    assert "Virtuous refused the credential (401)" in result.stderr
    assert "wrong-key-8a7c1f0e55" not in result.output
    assert b"wrong-key-8a7c1f0e55" not in (tmp_path / ".connector" / "state.db").read_bytes()


def test_a_key_without_permission_names_what_it_lacks(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    keys = {KEY: {"org": "org-1", "permissions": ["contacts:read"]}}
    with running(api_keys=keys) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        donations_csv(tmp_path / "donations.csv", 1)
        result = invoke("run", write_recipe(gifts_recipe()))
    assert result.exit_code == 3
    assert "(403)" in result.stderr
    assert "gift" in result.stderr.lower()


def test_500_gifts_in_a_small_window_never_meet_a_429(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    with running(rate_limit=3, rate_window_seconds=1) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        donations_csv(tmp_path / "donations.csv", 500)
        result = report(
            invoke("run", write_recipe(gifts_recipe(batch=50, limit=3, window=1)), "--json")
        )
        log = emulator.requests()
    assert result["outcomes"]["written"] == 500
    assert [r for r in log if r["status"] == 429] == []
    assert len([r for r in log if r["path"] in TRANSACTIONS]) == math.ceil(500 / 50)


def test_faults_never_lose_or_double_a_gift(monkeypatch, write_recipe, invoke, tmp_path) -> None:
    faults = {
        "error_rate": 0.3,
        "drop_rate": 0.1,
        "rate_limit_storm": 3,
        "storm_retry_after": 1,
        "seed": 7,
    }
    with running(faults=faults) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        donations_csv(tmp_path / "donations.csv", 60)
        recipe = write_recipe(gifts_recipe(batch=10))
        first = report(invoke("run", recipe, "--json"))
        if not first["ok"]:  # retries spent on a batch: it waits in the dead-letter queue
            emulator.control("POST", "faults", json={"error_rate": 0, "drop_rate": 0})
            report(invoke("dlq", "retry", recipe, "--json"))
        emulator.import_now()
        gifts = emulator.state()["gifts"]
    ids = sorted(g["transactionId"] for g in gifts)
    assert ids == sorted(f"g-{n}" for n in range(1, 61))


def test_two_processes_sharing_a_key_stay_within_the_budget(monkeypatch, tmp_path) -> None:
    root = Path(__file__).resolve().parents[3]
    with running(rate_limit=4, rate_window_seconds=1) as emulator:
        procs = []
        for name in ("one", "two"):
            folder = tmp_path / name
            folder.mkdir()
            donations_csv(folder / "donations.csv", 30, start=1 if name == "one" else 100)
            (folder / "recipe.yaml").write_text(
                gifts_recipe(batch=5, limit=4, window=1).replace("name: gifts", f"name: {name}")
            )
            env = {
                **os.environ,
                "VIRTUOUS_BASE_URL": emulator.url,
                "VIRTUOUS_API_KEY": KEY,
                "PYTHONPATH": str(root),
                "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1",
            }
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "from core.cli import main; main()",
                        "run",
                        str(folder / "recipe.yaml"),
                        "--json",
                        "--state",
                        str(tmp_path / "shared.db"),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [p.communicate(timeout=120) for p in procs]
        log = emulator.requests()
    assert all(p.returncode == 0 for p in procs), outputs
    assert [r for r in log if r["status"] == 429] == []
    assert len([r for r in log if r["path"] in TRANSACTIONS]) == 12
