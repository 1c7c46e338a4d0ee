"""recipes/givebutter-to-virtuous-gifts.yaml end to end: Givebutter -> Virtuous emulators."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from connectors.givebutter.emulator import EmulatorSettings as GivebutterSettings
from connectors.givebutter.emulator import GivebutterState
from connectors.givebutter.emulator import create_app as givebutter_app
from connectors.virtuous.emulator import EmulatorSettings as VirtuousSettings
from connectors.virtuous.emulator import create_app as virtuous_app
from core.emulator import EmulatorServer

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "givebutter-to-virtuous-gifts.yaml"
GIVEBUTTER_KEY, VIRTUOUS_KEY = "gb-e2e-key-77", "vt-e2e-key-88"


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GivebutterState, str]]:
    """Both emulators, the recipe's variables pointing at them: (Givebutter, Virtuous's URL)."""
    givebutter = givebutter_app(GivebutterSettings(api_keys=[GIVEBUTTER_KEY]))
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
        yield givebutter.state.emulator, vt.url


def run(invoke: Callable[..., Result], state: Path, code: int = 0) -> dict[str, Any]:
    result = invoke("run", RECIPE, "--json", "--state", state)
    assert result.exit_code == code, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_transactions_become_gifts_once(
    services: tuple[GivebutterState, str], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, virtuous = services
    transactions = givebutter.seed(count=5)
    transactions[4].update(refunded=True)  # refunded before it was ever sent: no gift
    runs = [run(invoke, tmp_path / "state.db")["outcomes"] for _ in range(2)]
    assert httpx.post(f"{virtuous}/_emulator/import").json()["giftsCreated"] == 4
    sample = transactions[0]
    created = httpx.get(
        f"{virtuous}/api/Gift/Givebutter/{sample['id']}",
        headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
    ).json()
    assert (runs[0]["written"], runs[0]["filtered"]) == (4, 1)
    assert runs[1]["written"] == 0
    assert created["amount"] == sample["amount"]
    assert created["transactionSource"] == "Givebutter"


def test_a_transaction_missing_what_the_mapping_needs_is_dead_lettered_by_field(
    services: tuple[GivebutterState, str], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    givebutter, _ = services
    no_amount, no_date, nobody, fine = givebutter.seed(count=4)
    del no_amount["amount"]
    no_date["transacted_at"] = None
    for name in ("contact_id", "email", "first_name", "last_name"):
        del nobody[name]
    report = run(invoke, tmp_path / "state.db", code=1)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (1, 3)
    fields = {p["key"]: p["field"] for p in report["problems"]}
    assert fields == {no_amount["id"]: "amount", no_date["id"]: "giftDate", nobody["id"]: "contact"}
    assert fine["id"] not in fields
