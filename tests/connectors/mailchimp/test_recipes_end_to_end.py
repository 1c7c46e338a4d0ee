"""The shipped Mailchimp <-> Virtuous recipes, run through the CLI between the two emulators."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, ada_member, day, report
from tests.connectors.virtuous.support import serving

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


@pytest.fixture
def virtuous(monkeypatch):
    with serving(monkeypatch) as emulator:
        yield emulator


@pytest.fixture
def recipe(mailchimp, virtuous, monkeypatch, tmp_path):
    monkeypatch.setenv("MAILCHIMP_API_KEY", API_KEY)
    monkeypatch.setenv("MAILCHIMP_LIST_ID", LIST_ID)
    monkeypatch.setenv("MAILCHIMP_BASE_URL", mailchimp.url)

    def copy(name: str) -> Path:
        # A copy, so the run's state lands in the test's directory, not in recipes/.
        return Path(shutil.copy(RECIPES / f"{name}.yaml", tmp_path / f"{name}.yaml"))

    return copy


def test_mailchimp_members_become_virtuous_contacts(mailchimp, virtuous, recipe, invoke) -> None:
    mailchimp.seed(
        ada_member(last_changed=day(1)),
        {
            "email_address": "grace@donors.org",
            "last_changed": day(2),
            "merge_fields": {"FNAME": "Grace", "LNAME": "Hopper"},
        },
        {
            "email_address": "solo@donors.org",
            "last_changed": day(3),
            "merge_fields": {"FNAME": "Solo"},
        },
        {
            "email_address": "bounced@donors.org",
            "status": "cleaned",
            "last_changed": day(4),
            "merge_fields": {"FNAME": "Bo", "LNAME": "Unced"},
        },
    )
    path = recipe("mailchimp-members-to-virtuous-contacts")
    first = report(invoke("run", path, "--json"))
    assert first["outcomes"]["written"] == 2
    assert first["outcomes"]["filtered"] == 1  # Solo has no last name; the cleaned one is not read
    assert first["records_read"] == 3

    summary = httpx.post(f"{virtuous.url}/_emulator/import").json()
    assert summary["contactsCreated"] == 2
    contacts = httpx.get(f"{virtuous.url}/_emulator/state").json()["contacts"]
    ada = next(c for c in contacts if c["contactIndividuals"][0]["firstName"] == "Ada")
    assert {"source": "Mailchimp", "id": "cfb99b840563810dcc4dc97b89f18baf"} in ada[
        "contactReferences"
    ]
    assert ada["address"]["city"] == "Springfield"
    assert "Donor" in ada["tags"]

    again = report(invoke("run", path, "--json"))
    assert again["outcomes"]["written"] == 0
    assert again["outcomes"]["updated"] == 0


def test_virtuous_contacts_become_mailchimp_members(mailchimp, virtuous, recipe, invoke) -> None:
    seeded = httpx.post(
        f"{virtuous.url}/_emulator/seed",
        json={
            "contacts": [
                {
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "email": "ada@donors.org",
                    "tags": "Donor;Board",
                },
                {"firstName": "No", "lastName": "Email"},
            ]
        },
    )
    assert seeded.status_code == 200, seeded.text
    path = recipe("virtuous-contacts-to-mailchimp")
    outcome = report(invoke("run", path, "--json"))
    assert outcome["outcomes"]["written"] == 1
    assert outcome["outcomes"]["filtered"] == 1
    (member,) = mailchimp.state.members[LIST_ID].values()
    assert member.email == "ada@donors.org"
    assert member.status == "pending"
    assert member.merge_fields == {"FNAME": "Ada", "LNAME": "Lovelace"}
    assert sorted(member.tags) == ["Board", "Donor"]
