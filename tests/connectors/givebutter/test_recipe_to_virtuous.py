"""recipes/givebutter-to-virtuous-gifts.yaml end to end: Givebutter -> Virtuous emulators."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from connectors.givebutter.emulator import EmulatorSettings as GivebutterSettings
from connectors.givebutter.emulator import create_app as givebutter_app
from connectors.virtuous.emulator import EmulatorSettings as VirtuousSettings
from connectors.virtuous.emulator import create_app as virtuous_app
from core.emulator import EmulatorServer

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "givebutter-to-virtuous-gifts.yaml"
GIVEBUTTER_KEY, VIRTUOUS_KEY = "gb-e2e-key-77", "vt-e2e-key-88"


def test_transactions_become_gifts_once(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    givebutter = givebutter_app(GivebutterSettings(api_keys=[GIVEBUTTER_KEY]))
    transactions = givebutter.state.emulator.seed(count=5)
    transactions[4].update(refunded=True)  # refunded before it was ever sent: no gift
    virtuous = virtuous_app(
        VirtuousSettings.model_validate({"api_keys": {VIRTUOUS_KEY: {"org": "org-1"}}})
    )
    with EmulatorServer(givebutter) as gb, EmulatorServer(virtuous) as vt:
        for name, value in {
            "GIVEBUTTER_API_KEY": GIVEBUTTER_KEY,
            "GIVEBUTTER_BASE_URL": gb.url,
            "VIRTUOUS_API_KEY": VIRTUOUS_KEY,
            "VIRTUOUS_BASE_URL": vt.url,
        }.items():
            monkeypatch.setenv(name, value)
        httpx.post(
            f"{vt.url}/_emulator/seed",
            json={
                "projects": [
                    {"name": "General", "code": "GENERAL"},
                    {"name": "Scholarships", "code": "SCHOLAR"},
                ]
            },
        ).raise_for_status()
        runs = []
        for _ in range(2):
            result = invoke("run", RECIPE, "--json", "--state", tmp_path / "state.db")
            assert result.exit_code == 0, result.output
            runs.append(json.loads(result.stdout)["outcomes"])
        assert httpx.post(f"{vt.url}/_emulator/import").json()["giftsCreated"] == 4
        sample = transactions[0]
        created = httpx.get(
            f"{vt.url}/api/Gift/Givebutter/{sample['id']}",
            headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
        ).json()
    assert (runs[0]["written"], runs[0]["filtered"]) == (4, 1)
    assert runs[1]["written"] == 0
    assert created["amount"] == sample["amount"]
    assert created["transactionSource"] == "Givebutter"
