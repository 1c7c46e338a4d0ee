"""A Mailchimp emulator on loopback, and recipes and contexts pointed at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from connectors.mailchimp.emulator.app import create_app
from connectors.mailchimp.emulator.store import EmulatorSettings, EmulatorState
from core.context import Context
from core.emulation import EmulatorServer
from core.state import SqliteStateStore

#: A fake key, distinctive enough to be searched for in output and state files.
API_KEY = "mcfakesecret7c1e2d9a0b-us1"
LIST_ID = "L1"


@dataclass
class Emulator:
    server: EmulatorServer
    state: EmulatorState

    @property
    def url(self) -> str:
        return f"{self.server.url}/3.0"

    def seed(self, *members: dict[str, Any]) -> None:
        for member in members:
            self.state.create(
                member.get("list_id", LIST_ID),
                member["email_address"],
                member.get("status", "subscribed"),
                member.get("merge_fields", {}),
                member.get("tags"),
                member.get("last_changed"),
            )

    def requests(self, method: str | None = None, path_end: str = "") -> list[dict[str, str]]:
        return [
            r
            for r in self.state.requests
            if (method is None or r["method"] == method) and r["path"].endswith(path_end)
        ]


@contextmanager
def serving(**settings: Any) -> Iterator[Emulator]:
    """An emulator with the test key and audience, and any other ``settings``, on loopback."""
    app = create_app(EmulatorSettings(api_keys=[API_KEY], lists={LIST_ID: "Donors"}, **settings))
    with EmulatorServer(app) as server:
        yield Emulator(server, app.state.emulator)


@pytest.fixture
def mailchimp() -> Iterator[Emulator]:
    with serving() as emulator:
        yield emulator


def day(n: int) -> datetime:
    """A fixed moment in the past, n days into 2024: seeded members changed long ago."""
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)


def people(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "email_address": f"donor{i}@donors.org",
            "last_changed": day(i),
            "merge_fields": {"FNAME": f"First{i}", "LNAME": f"Last{i}"},
            **extra,
        }
        for i in range(1, n + 1)
    ]


def ada_member(last_changed: datetime) -> dict[str, Any]:
    """Ada Lovelace, to seed: a mixed-case address, a tag, a phone and a postal address."""
    return {
        "email_address": "Ada@Donors.org",
        "last_changed": last_changed,
        "tags": ["Donor"],
        "merge_fields": {
            "FNAME": "Ada",
            "LNAME": "Lovelace",
            "PHONE": "555-0100",
            "ADDRESS": {
                "addr1": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "zip": "62701",
                "country": "US",
            },
        },
    }


@pytest.fixture
def context(tmp_path: Path) -> Iterator[Context]:
    state = SqliteStateStore(tmp_path / ".connector" / "state.db")
    ctx = Context("mailchimp-test", tmp_path, state)
    try:
        yield ctx
    finally:
        ctx.close()
        state.close()


def report(result: Result) -> dict[str, Any]:
    assert result.exit_code in (0, 1), result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def assert_refused_without_showing(result: Result, key: str, folder: Path) -> None:
    """The run stopped at Mailchimp's refusal of `key`, and the key shows neither in what the
    run printed nor in any file it left under `folder`/.connector."""
    assert result.exit_code == 3
    assert "Mailchimp refused the credential (401)" in result.output
    assert key not in result.output
    for path in (folder / ".connector").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes()
