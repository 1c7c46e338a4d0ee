"""The Virtuous emulator in ``connector sandbox``: projects, contacts and gifts to start with,
and Virtuous's nightly import of gift transactions between two rounds of runs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.emulation.control import control, emulator_request
from core.sandbox import Rounds, SandboxEmulator
from core.sandbox.cast import DONORS, NEWCOMER

if TYPE_CHECKING:
    from starlette.types import ASGIApp

API_KEY = "emulator-key"
#: Signs the webhooks the emulator fires (a subscription may give its own).
WEBHOOK_SECRET = "emulator-webhook-secret"
PROJECTS = (("General Fund", "GENERAL"), ("Scholarships", "SCHOLAR"), ("Missions", "MISSIONS"))


class VirtuousSandbox(SandboxEmulator):
    name = "virtuous"
    description = "Virtuous CRM+: contacts, gifts, imports"

    def create_app(self) -> ASGIApp:
        from connectors.virtuous.emulator.app import create_app
        from connectors.virtuous.emulator.settings import EmulatorSettings

        return create_app(EmulatorSettings(webhook_secret=WEBHOOK_SECRET))

    def variables(self, url: str) -> dict[str, str]:
        return {
            "VIRTUOUS_BASE_URL": url,
            "VIRTUOUS_API_KEY": API_KEY,
            "VIRTUOUS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }

    def seed_data(self) -> Mapping[str, Any]:
        contacts = [
            {
                "id": number,
                "firstName": d.first,
                "lastName": d.last,
                "email": d.email,
                "address1": f"{number} Main St",
                "city": d.city,
                "state": d.state,
                "postal": d.postal,
            }
            for number, d in enumerate(DONORS[:4], start=1)
        ]
        gifts = [
            {
                "contactId": 1 + number % len(contacts),
                "amount": f"{25 * (number + 1)}.00",
                "giftDate": f"2025-03-{number + 1:02d}",
                "giftType": "Credit",
                "designations": [
                    {
                        "code": PROJECTS[number % len(PROJECTS)][1],
                        "amountDesignated": f"{25 * (number + 1)}.00",
                    }
                ],
            }
            for number in range(6)
        ]
        projects = [{"name": name, "projectCode": code} for name, code in PROJECTS]
        return {"projects": projects, "contacts": contacts, "gifts": gifts}

    def seeded(self) -> str:
        return "3 projects (GENERAL, SCHOLAR, MISSIONS), 4 contacts, 6 gifts"

    def after_first_round(self, url: str, rounds: Rounds) -> Iterable[str]:
        """Virtuous's nightly import makes gifts of the gift transactions sent, then ``connector
        status`` follows each recipe that sent gift transactions."""
        summary = control(url, "POST", "import")
        yield (
            f"\nVirtuous's nightly import ran: {summary.get('giftsCreated', 0)} gift(s)"
            f" and {summary.get('contactsCreated', 0)} contact(s) created,"
            f" {len(summary.get('needsUpdate') or [])} left for review"
        )
        from core.hints import hint_target

        for recipe in rounds.recipes:
            if _sends_gifts(recipe):
                # the copy the run read and the state it kept: the command runs as shown
                yield f"\n$ connector status {hint_target(recipe, rounds.state)}"
                rounds.invoke(["status", str(recipe)])

    def provoke(self, url: str) -> str | None:
        """A new donor's gift transaction, then the import: Virtuous makes the contact and the
        gift and fires ContactCreate and GiftCreate."""
        gift = {
            "transactionSource": "Sandbox",
            "transactionId": f"sandbox-{time.time_ns()}",
            "amount": "50.00",
            "giftDate": date.today().isoformat(),
            "giftType": "Credit",
            "contact": {
                "firstname": NEWCOMER.first,
                "lastname": NEWCOMER.last,
                "email": NEWCOMER.email,
            },
        }
        headers = {"Authorization": f"Bearer {API_KEY}"}
        emulator_request(url, "POST", "/api/v2/Gift/Transaction", gift, headers)
        control(url, "POST", "import")
        return (
            f"a $50.00 gift from a new donor, {NEWCOMER.first} {NEWCOMER.last}, imported:"
            " Virtuous fires ContactCreate and GiftCreate"
        )

    def holdings(self, state: Mapping[str, Any]) -> str | None:
        counts = state.get("counts")
        if not isinstance(counts, Mapping):
            return None
        shown = ("contacts", "projects", "gifts", "recurringGifts", "pending", "needsUpdate")
        return ", ".join(f"{counts[kind]} {kind}" for kind in shown if kind in counts)


def _sends_gifts(recipe: Path) -> bool:
    from connectors.virtuous.gift_transactions import GiftTransactions
    from core.cli import Session
    from core.errors import RecipeError

    try:
        loaded = Session().recipe(recipe, placeholders=True)
    except RecipeError:
        return False  # its run said why already
    return loaded.sink_class is GiftTransactions
