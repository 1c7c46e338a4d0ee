"""The Givebutter flow declared in http.json gives exactly what givebutter.transactions gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from connectors.givebutter.emulator.app import EmulatorSettings, create_app
from connectors.givebutter.emulator.shapes import KINDS, PARTIAL_REFUNDS
from connectors.virtuous.emulator.app import EmulatorSettings as VirtuousSettings
from connectors.virtuous.emulator.app import create_app as virtuous_app
from core.emulation import EmulatorServer
from tests.conftest import read_jsonl

KEY = "gb-equivalence-5e6f7a8b9c0d"
VIRTUOUS_KEY = "vt-http-json-e2e-31"
SHIPPED = (
    Path(__file__).resolve().parents[3] / "recipes" / "givebutter-http-json-to-virtuous-gifts.yaml"
)

DEDICATED = """
version: 1
name: dedicated
source:
  use: givebutter.transactions
  with: {api_key: "${GB_KEY}", base_url: "${GB_URL}", per_page: 3}
sink: {use: file.jsonl, with: {path: dedicated.jsonl}}
"""

DECLARED = """
version: 1
name: declared
source:
  use: http.json
  with:
    service_name: Givebutter
    base_url: "${GB_URL}"
    path: /v1/transactions
    params: {per_page: 3, sortBy: created_at}
    auth: {type: bearer, token: "${GB_KEY}"}
    pagination: {type: next_url, path: links.next}
    records_path: data
    incremental: {param: updatedAfter, cursor_field: updated_at, overlap_seconds: 300}
    rate_limit: {requests: 500, per_seconds: 60}
sink: {use: file.jsonl, with: {path: declared.jsonl}}
"""


def test_both_recipes_give_the_same_records_run_after_run(
    write_recipe: Callable[..., Path],
    invoke: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    app = create_app(EmulatorSettings(api_keys=[KEY]))
    givebutter = app.state.emulator
    seeded = givebutter.seed(count=8)
    recipes = [write_recipe(DEDICATED, "dedicated.yaml"), write_recipe(DECLARED, "declared.yaml")]
    with EmulatorServer(app) as server:
        monkeypatch.setenv("GB_KEY", KEY)
        monkeypatch.setenv("GB_URL", server.url)

        def both() -> list[tuple[dict, list[dict]]]:
            """Run each recipe once: its outcomes, and the queries it sent."""
            runs = []
            for recipe in recipes:
                before = len(givebutter.requests)
                result = invoke("run", recipe, "--json")
                assert result.exit_code == 0, result.output
                sent = [r["query"] for r in givebutter.requests[before:]]
                runs.append((json.loads(result.stdout)["outcomes"], sent))
            return runs

        first = both()
        givebutter.refund(seeded[3]["id"])
        givebutter.seed(count=2)
        second = both()
    # Same outcomes and the same queries, page for page, on the first run and the incremental one.
    assert first[0] == first[1]
    assert first[0][0]["written"] == 8
    assert len(first[0][1]) == 3
    assert second[0] == second[1]
    assert (second[0][0]["written"], second[0][0]["updated"]) == (2, 1)
    assert "updatedAfter" in second[0][1][0]
    dedicated = read_jsonl(tmp_path / "dedicated.jsonl")
    assert dedicated == read_jsonl(tmp_path / "declared.jsonl")
    assert len(dedicated) == 11


@pytest.mark.parametrize("partial_refunds", PARTIAL_REFUNDS)
def test_the_shipped_recipe_runs_end_to_end_into_virtuous(
    partial_refunds: str,
    invoke: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Only money taken and kept becomes a gift, however Givebutter shows a partial refund."""
    settings = EmulatorSettings(api_keys=[KEY], partial_refunds=partial_refunds)
    givebutter = create_app(settings)
    kinds = dict(zip(KINDS, givebutter.state.emulator.seed_kinds(*KINDS), strict=True))
    seeded = [kinds["succeeded"], *givebutter.state.emulator.seed(count=1)]
    seeded[1]["transacted_at"] = None  # the mapping needs it: dead-lettered, naming the field
    gifts = {kinds[kind]["id"] for kind in ("succeeded", "recurring", "check")}
    virtuous = virtuous_app(
        VirtuousSettings.model_validate({"api_keys": {VIRTUOUS_KEY: {"org": "org-1"}}})
    )
    state = tmp_path / "state.db"
    with EmulatorServer(givebutter) as gb, EmulatorServer(virtuous) as vt:
        monkeypatch.setenv("GIVEBUTTER_API_KEY", KEY)
        monkeypatch.setenv("GIVEBUTTER_BASE_URL", gb.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", VIRTUOUS_KEY)
        monkeypatch.setenv("VIRTUOUS_BASE_URL", vt.url)
        projects = [{"name": "General", "code": "GENERAL"}, {"name": "Grants", "code": "SCHOLAR"}]
        httpx.post(f"{vt.url}/_emulator/seed", json={"projects": projects}).raise_for_status()
        first = invoke("run", SHIPPED, "--json", "--state", state)
        assert first.exit_code == 1, first.output
        report = json.loads(first.stdout)
        again = json.loads(invoke("run", SHIPPED, "--json", "--state", state).stdout)
        imported = httpx.post(f"{vt.url}/_emulator/import").json()
        sample = httpx.get(
            f"{vt.url}/api/Gift/Givebutter/{seeded[0]['id']}",
            headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
        ).json()
        found = {
            tid
            for tid in (r["id"] for r in kinds.values())
            if httpx.get(
                f"{vt.url}/api/Gift/Givebutter/{tid}",
                headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
            ).is_success
        }
    outcomes = report["outcomes"]
    filtered = len(KINDS) - len(gifts)
    assert (outcomes["written"], outcomes["filtered"], outcomes["invalid"]) == (3, filtered, 1)
    assert found == gifts
    (problem,) = report["problems"]
    assert (problem["key"], problem["field"]) == (seeded[1]["id"], "giftDate")
    assert again["outcomes"]["written"] == 0
    assert imported["giftsCreated"] == 3
    assert sample["amount"] == seeded[0]["amount"]
    assert KEY not in first.output
