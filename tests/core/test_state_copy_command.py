"""``connector state copy``: one machine's state moved to the Postgres many machines share,
after which a run there sends no gift the first machine sent."""

from __future__ import annotations

import json

import pytest

from tests.connectors.virtuous.support import donations_csv, gifts_recipe, report, serving

TRANSACTIONS = ("/api/v2/Gift/Transactions", "/api/v2/Gift/Transaction")


@pytest.fixture
def virtuous(monkeypatch):
    with serving(monkeypatch) as emulator:
        yield emulator


def _gift_requests(virtuous) -> int:
    return len([r for r in virtuous.requests() if r["path"] in TRANSACTIONS])


def test_a_run_on_the_copy_sends_no_gift_sent_before(
    virtuous, write_recipe, invoke, tmp_path, postgres_url
) -> None:
    donations_csv(tmp_path / "donations.csv", 7)
    recipe = write_recipe(gifts_recipe(batch=3))
    assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 7  # on SQLite
    assert virtuous.import_now()["giftsCreated"] == 7
    sent = _gift_requests(virtuous)

    copied = invoke("state", "copy", recipe, "--to", postgres_url)
    assert copied.exit_code == 0, copied.output
    assert "ledger 7" in copied.stdout
    assert "run reports 1" in copied.stdout
    assert "donor1@example.org" not in copied.output  # what it copied, never what records hold

    again = report(invoke("run", recipe, "--json", "--state", postgres_url))
    assert again["outcomes"]["unchanged"] == 7
    assert again["outcomes"].get("written", 0) == 0
    assert _gift_requests(virtuous) == sent
    assert virtuous.state()["counts"]["gifts"] == 7

    back = tmp_path / "back.db"
    result = invoke("state", "copy", recipe, "--from", postgres_url, "--to", back, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gifts"]["run reports"] == 2  # the run on Postgres too


def test_a_target_holding_the_recipe_is_refused_with_exit_2(
    virtuous, write_recipe, invoke, tmp_path, postgres_url
) -> None:
    donations_csv(tmp_path / "donations.csv", 2)
    recipe = write_recipe(gifts_recipe())
    report(invoke("run", recipe, "--json"))
    assert invoke("state", "copy", recipe, "--to", postgres_url).exit_code == 0

    refused = invoke("state", "copy", recipe, "--to", postgres_url)
    assert refused.exit_code == 2
    assert "already holds state of gifts" in refused.stderr
    assert f"connector state show {recipe} --state <the --to URL>" in refused.stderr
    assert "--replace" in refused.stderr
    assert invoke("state", "copy", recipe, "--to", postgres_url, "--replace").exit_code == 0


def test_state_copy_is_listed_with_the_state_commands(invoke) -> None:
    listed = invoke("state", "--help")
    assert listed.exit_code == 0
    assert "copy" in listed.stdout
