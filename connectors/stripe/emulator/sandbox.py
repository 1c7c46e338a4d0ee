"""The Stripe emulator in ``connector sandbox``: a month of donations by card, with fees,
designations, a refund and a declined card."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.emulation.control import control
from core.sandbox import SandboxEmulator
from core.sandbox.cast import DONORS, NEWCOMER

if TYPE_CHECKING:
    from starlette.types import ASGIApp

DAY = 86_400
DESIGNATIONS = ("general", "scholarships", "missions")


class StripeSandbox(SandboxEmulator):
    name = "stripe"
    description = "Stripe: charges, refunds, customers"

    def create_app(self) -> ASGIApp:
        from connectors.stripe.emulator.app import create_app

        return create_app()

    def variables(self, url: str) -> dict[str, str]:
        from connectors.stripe.emulator.app import DEFAULT_KEY

        return {"STRIPE_BASE_URL": url, "STRIPE_API_KEY": DEFAULT_KEY}

    def seed_data(self) -> Mapping[str, Any]:
        start = int(time.time()) - 30 * DAY
        charges = [_charge(number, start + number * 2 * DAY) for number in range(12)]
        charges[3]["refunds"] = [{}]  # refunded in full
        charges[7]["status"] = "failed"
        return {"charges": charges}

    def seeded(self) -> str:
        return "12 charges over the last month (1 refunded, 1 declined) from 6 customers"

    def provoke(self, url: str) -> str | None:
        """A new donor's card charge: Stripe fires charge.succeeded."""
        charge = _charge(12, int(time.time()))
        name = f"{NEWCOMER.first} {NEWCOMER.last}"
        charge["customer"] = {"id": "cus_sandbox_new", "name": name, "email": NEWCOMER.email}
        charge["billing_details"] |= {"name": name, "email": NEWCOMER.email}
        control(url, "POST", "seed", {"charges": [charge]})
        return f"{name} gives ${charge['amount'] / 100:.2f} by card: Stripe fires charge.succeeded"


def _charge(number: int, created: int) -> dict[str, Any]:
    donor = DONORS[number % len(DONORS)]
    amount = 2500 + 500 * number
    return {
        "amount": amount,
        "currency": "usd",
        "created": created,
        "description": "Online donation",
        "fee": round(amount * 0.029) + 30,
        "metadata": {
            "designation": DESIGNATIONS[number % len(DESIGNATIONS)],
            "campaign": "SPRING25",
        },
        "customer": {
            "id": f"cus_sandbox{number % len(DONORS) + 1}",
            "name": f"{donor.first} {donor.last}",
            "email": donor.email,
        },
        "billing_details": {
            "name": f"{donor.first} {donor.last}",
            "email": donor.email,
            "address": {
                "line1": f"{number + 1} Main St",
                "city": donor.city,
                "state": donor.state,
                "postal_code": donor.postal,
                "country": "US",
            },
        },
    }
