"""The Mailchimp emulator in ``connector sandbox``: one audience of donors and newsletter
readers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.emulation.control import control
from core.sandbox import SandboxEmulator
from core.sandbox.cast import DONORS, NEWCOMER

if TYPE_CHECKING:
    from starlette.types import ASGIApp

API_KEY = "emulator-key-us1"
LIST_ID = "a1b2c3d4e5"


class MailchimpSandbox(SandboxEmulator):
    name = "mailchimp"
    description = "Mailchimp: an audience and its members"

    def create_app(self) -> ASGIApp:
        from connectors.mailchimp.emulator.app import create_app
        from connectors.mailchimp.emulator.store import EmulatorSettings

        # Its one audience only: a change made without a list_id goes where the sandbox says.
        return create_app(EmulatorSettings(lists={LIST_ID: "Donors"}))

    def variables(self, url: str) -> dict[str, str]:
        return {
            "MAILCHIMP_BASE_URL": f"{url}/3.0",
            "MAILCHIMP_API_KEY": API_KEY,
            "MAILCHIMP_LIST_ID": LIST_ID,
        }

    def seed_data(self) -> Mapping[str, Any]:
        members: list[dict[str, Any]] = [
            {
                "email_address": d.email,
                "merge_fields": {"FNAME": d.first, "LNAME": d.last},
                "tags": ["Donor"],
            }
            for d in DONORS[2:]
        ]
        members.append({"email_address": "reader@example.org", "merge_fields": {"FNAME": "Sam"}})
        members.append({"email_address": "gone@example.org", "status": "unsubscribed"})
        for member in members:
            member["list_id"] = LIST_ID
        return {"api_keys": [API_KEY], "lists": {LIST_ID: "Donors"}, "members": members}

    def seeded(self) -> str:
        return f"audience {LIST_ID} (Donors) with 6 members"

    def holdings(self, state: Mapping[str, Any]) -> str | None:
        members = (state.get("lists") or {}).get(LIST_ID)
        if not isinstance(members, list):
            return None
        statuses = Counter(str(member.get("status")) for member in members)
        shown = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        return f"{len(members)} members in audience {LIST_ID} ({shown})"

    def provoke(self, url: str) -> str | None:
        """A new reader signs up on the audience's form: Mailchimp fires subscribe."""
        body = {
            "list_id": LIST_ID,
            "email_address": NEWCOMER.email,
            "merge_fields": {"FNAME": NEWCOMER.first, "LNAME": NEWCOMER.last},
        }
        control(url, "POST", "act", body)
        return f"{NEWCOMER.first} {NEWCOMER.last} signs up: Mailchimp fires subscribe"
