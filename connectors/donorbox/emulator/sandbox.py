"""The Donorbox emulator in ``connector sandbox``: a campaign's donations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.emulation.control import control
from core.sandbox import SandboxEmulator

if TYPE_CHECKING:
    from starlette.types import ASGIApp

EMAIL = "ops@example.org"
API_KEY = "emulator-donorbox-key"


class DonorboxSandbox(SandboxEmulator):
    name = "donorbox"
    description = "Donorbox: a campaign's donations"

    def create_app(self) -> ASGIApp:
        from connectors.donorbox.emulator.app import create_app

        return create_app()

    def variables(self, url: str) -> dict[str, str]:
        return {"DONORBOX_BASE_URL": url, "DONORBOX_EMAIL": EMAIL, "DONORBOX_API_KEY": API_KEY}

    def seed_data(self) -> Mapping[str, Any]:
        return {"count": 12}

    def seeded(self) -> str:
        return "12 donations, one a day"

    def provoke(self, url: str) -> str | None:
        """One more donation: Donorbox announces donation.created."""
        control(url, "POST", "seed", {"count": 1})
        return "a new donation: Donorbox fires donation.created"
