"""Both emulators for the Donorbox recipes, once under each emulator switch.

What Donorbox does not document is a switch of its emulator (which keys a donation carries, what
status a refund shows); every test that takes ``services`` runs under each combination.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest

from connectors.donorbox.emulator.app import DonorboxState
from connectors.donorbox.emulator.app import EmulatorSettings as DonorboxSettings
from connectors.donorbox.emulator.app import create_app as donorbox_app
from core.emulation import EmulatorServer
from tests.connectors.virtuous.support import Virtuous, serving

EMAIL, DONORBOX_KEY = "ops@example.org", "dbx-e2e-key-31"
PROJECTS = [
    {"name": "General Fund", "code": "GENERAL"},
    {"name": "Scholarships", "code": "SCHOLAR"},
]
REFUND_STATUSES = ("stays_paid", "refunded", "refunded_or_partially_refunded")
KEY_SETS = ("per_sample", "all_documented")
#: Every combination of the emulator's switches for what Donorbox leaves undocumented.
SWITCHES = [{"refund_status": r, "keys": k} for r, k in product(REFUND_STATUSES, KEY_SETS)]


def switch_id(switches: dict[str, Any]) -> str:
    return "-".join(str(v) for v in switches.values())


@pytest.fixture(params=SWITCHES, ids=switch_id)
def services(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DonorboxState, Virtuous]]:
    """Both emulators, the recipes' variables pointing at them."""
    settings = DonorboxSettings(credentials={EMAIL: DONORBOX_KEY}, **request.param)
    donorbox = donorbox_app(settings)
    with EmulatorServer(donorbox) as db, serving(monkeypatch) as virtuous:
        monkeypatch.setenv("DONORBOX_EMAIL", EMAIL)
        monkeypatch.setenv("DONORBOX_API_KEY", DONORBOX_KEY)
        monkeypatch.setenv("DONORBOX_BASE_URL", db.url)
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        yield donorbox.state.emulator, virtuous
