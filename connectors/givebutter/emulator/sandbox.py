"""The Givebutter emulator in ``connector sandbox``: a campaign's transactions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.emulation.control import control
from core.sandbox import SandboxEmulator

if TYPE_CHECKING:
    from starlette.types import ASGIApp

API_KEY = "emulator-givebutter-key"


class GivebutterSandbox(SandboxEmulator):
    name = "givebutter"
    description = "Givebutter: a campaign's transactions"

    def create_app(self) -> ASGIApp:
        from connectors.givebutter.emulator.app import create_app

        return create_app()

    def variables(self, url: str) -> dict[str, str]:
        return {"GIVEBUTTER_BASE_URL": url, "GIVEBUTTER_API_KEY": API_KEY}

    def seed_data(self) -> Mapping[str, Any]:
        return {"count": 12}

    def seeded(self) -> str:
        return "12 transactions"

    def provoke(self, url: str) -> str | None:
        """One more transaction: Givebutter announces transaction.succeeded."""
        control(url, "POST", "seed", {"count": 1})
        return "a new transaction: Givebutter fires transaction.succeeded"
