"""Both emulators for the Givebutter recipes, once under each way a partial refund may show.

Givebutter does not publish how a partial refund looks (``shapes.PartialRefund``): it is a switch
of its emulator, and every test that takes ``services`` runs under each setting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from connectors.givebutter.emulator.app import EmulatorSettings as GivebutterSettings
from connectors.givebutter.emulator.app import GivebutterState
from connectors.givebutter.emulator.app import create_app as givebutter_app
from connectors.givebutter.emulator.shapes import PARTIAL_REFUNDS
from core.emulation import EmulatorServer
from tests.connectors.virtuous.support import Virtuous, serving

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
GIVEBUTTER_KEY = "gb-e2e-key-77"
PROJECTS = [{"name": "General", "code": "GENERAL"}, {"name": "Scholarships", "code": "SCHOLAR"}]


@pytest.fixture(params=PARTIAL_REFUNDS)
def services(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GivebutterState, Virtuous]]:
    """Both emulators, the recipes' variables pointing at them."""
    settings = GivebutterSettings(api_keys=[GIVEBUTTER_KEY], partial_refunds=request.param)
    givebutter = givebutter_app(settings)
    with EmulatorServer(givebutter) as gb, serving(monkeypatch) as virtuous:
        monkeypatch.setenv("GIVEBUTTER_API_KEY", GIVEBUTTER_KEY)
        monkeypatch.setenv("GIVEBUTTER_BASE_URL", gb.url)
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        yield givebutter.state.emulator, virtuous


def run_recipe(
    invoke: Callable[..., Result], recipe: Path, state: Path, code: int = 0
) -> dict[str, Any]:
    """Run ``recipe`` once through the CLI with the state store ``state``: its JSON report."""
    result = invoke("run", recipe, "--json", "--state", state)
    assert result.exit_code == code, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report
