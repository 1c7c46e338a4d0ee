"""Fixtures for the Stripe connector: the emulator on loopback and recipes that read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.stripe.emulator.app import EmulatorSettings, create_app
from connectors.stripe.emulator.store import StripeStore
from core.emulation import EmulatorServer

KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
JAN_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z


class Emulator:
    """A running emulator: its URL, its store, and the requests it has answered."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.app: Any = server.app

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> StripeStore:
        store: StripeStore = self.app.state.store
        return store

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.app.state.requests

    def lists(self, path: str = "/v1/charges") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and r["method"] == "GET"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    app = create_app(EmulatorSettings(api_keys=[KEY]))
    with EmulatorServer(app) as server:
        yield Emulator(server)


@pytest.fixture
def emulator_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, with STRIPE_API_KEY and STRIPE_BASE_URL pointing recipes at it."""
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    monkeypatch.setenv("STRIPE_BASE_URL", emulator.url)
    return emulator


CHARGES_TO_JSONL = """
version: 1
name: stripe-charges-to-jsonl
source:
  use: stripe.charges
  with:
    api_key: "${{STRIPE_API_KEY}}"
    base_url: "${{STRIPE_BASE_URL}}"
    start: 2025-01-01
{settings}
map:
  id: record.id
  amount: record.amount | minor_to_major(record.currency)
  currency: record.currency | upper
  created: record.created
  status: record.status
  fee: record.fee
  net: record.net
sink:
  use: file.jsonl
  with: {{path: out/charges.jsonl}}
tests:
  - input: {{id: ch_1, amount: 100, currency: usd, created: 1, status: succeeded}}
    expect: {{amount: "1.00"}}
"""


@pytest.fixture
def charges_recipe(write_recipe: Callable[..., Path]) -> Callable[..., Path]:
    """A charges -> file.jsonl recipe; keyword arguments become extra source settings."""

    def write(**settings: Any) -> Path:
        lines = "".join(f"    {k}: {_yaml(v)}\n" for k, v in settings.items())
        return write_recipe(CHARGES_TO_JSONL.format(settings=lines.rstrip("\n")))

    return write


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
