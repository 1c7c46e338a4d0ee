"""The two-way pair virtuous-mailchimp-two-way, run through the CLI between the two emulators:
what one half writes comes back to the other as ``echo`` and is not sent again, and a field
changed on both sides ends as the pair's conflict policy says."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.mailchimp import php_form
from connectors.mailchimp.service import subscriber_hash
from connectors.mailchimp.webhook import MailchimpWebhook
from core.context import Context
from core.recipe import load_recipe
from core.runner import Incoming, Runner
from core.state import open_state
from core.webhooks import Delivery
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, Emulator, report
from tests.connectors.virtuous.support import KEY, Virtuous, serving

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
TO_MAILCHIMP = "virtuous-to-mailchimp-two-way"
TO_VIRTUOUS = "mailchimp-to-virtuous-two-way"
ADA = "ada@donors.org"

Run = Callable[[str], dict[str, Any]]


@pytest.fixture
def virtuous(monkeypatch):
    with serving(monkeypatch) as emulator:
        yield emulator


@pytest.fixture
def folder(mailchimp, virtuous, monkeypatch, tmp_path) -> Path:
    """The pair, copied so that the runs' state lands in the test's directory."""
    monkeypatch.setenv("MAILCHIMP_API_KEY", API_KEY)
    monkeypatch.setenv("MAILCHIMP_LIST_ID", LIST_ID)
    monkeypatch.setenv("MAILCHIMP_BASE_URL", mailchimp.url)
    for name in (TO_MAILCHIMP, TO_VIRTUOUS):
        shutil.copy(RECIPES / f"{name}.yaml", tmp_path / f"{name}.yaml")
    return tmp_path


@pytest.fixture
def run(folder, invoke) -> Run:
    def run_one(name: str) -> dict[str, Any]:
        return report(invoke("run", folder / f"{name}.yaml", "--json"))

    return run_one


def _seed_ada(virtuous: Virtuous) -> int:
    seeded = virtuous.control(
        "POST",
        "seed",
        json={"contacts": [{"firstName": "Ada", "lastName": "Lovelace", "email": ADA}]},
    )
    contact_id: int = seeded["contacts"][0]
    return contact_id


def _rename_in_virtuous(virtuous: Virtuous, contact_id: int, first: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    contact = httpx.get(f"{virtuous.url}/api/Contact/{contact_id}", headers=headers).json()
    person = contact["contactIndividuals"][0]
    httpx.put(
        f"{virtuous.url}/api/ContactIndividual/{person['id']}",
        json={**person, "firstName": first},
        headers=headers,
    ).raise_for_status()


def _rename_in_mailchimp(mailchimp: Emulator, first: str) -> None:
    mailchimp.state.update(LIST_ID, ADA, {"merge_fields": {"FNAME": first}})


def _names(virtuous: Virtuous, mailchimp: Emulator, contact_id: int) -> tuple[str, str]:
    """Ada's first name in Virtuous, and in Mailchimp."""
    [contact] = [c for c in virtuous.state()["contacts"] if c["id"] == contact_id]
    member = mailchimp.state.members[LIST_ID][subscriber_hash(ADA)]
    return contact["contactIndividuals"][0]["firstName"], member.merge_fields["FNAME"]


def _synced(run: Run, virtuous: Virtuous) -> int:
    """Ada, in Virtuous, synced to Mailchimp and seen back by the other half."""
    contact_id = _seed_ada(virtuous)
    assert run(TO_MAILCHIMP)["outcomes"]["written"] == 1
    assert run(TO_VIRTUOUS)["outcomes"]["echo"] == 1
    return contact_id


def _advance(virtuous: Virtuous, mailchimp: Emulator, seconds: int) -> None:
    """Both services' clocks, so that the next change is later than any before it."""
    virtuous.control("POST", "clock", json={"advanceSeconds": seconds})
    mailchimp.state.clock_offset += timedelta(seconds=seconds)


def test_one_way_recipes_send_an_edit_back_where_it_came_from(folder, run, virtuous) -> None:
    """Without ``two_way:``, the second recipe writes Ada back to Virtuous: the loop."""
    for name in (TO_MAILCHIMP, TO_VIRTUOUS):
        path = folder / f"{name}.yaml"
        path.write_text(re.sub(r"(?ms)^two_way:.*?(?=^tests:)", "", path.read_text()))
    _seed_ada(virtuous)
    assert run(TO_MAILCHIMP)["outcomes"]["written"] == 1
    assert run(TO_VIRTUOUS)["outcomes"]["updated"] == 1  # the echo, written back


def test_the_pair_converges_after_changes_on_both_sides(run, virtuous, mailchimp) -> None:
    contact_id = _synced(run, virtuous)
    _advance(virtuous, mailchimp, 60)
    _rename_in_virtuous(virtuous, contact_id, "Augusta")
    mailchimp.state.update(LIST_ID, ADA, {"merge_fields": {"PHONE": "555-0100"}})
    mailchimp.seed(
        {"email_address": "grace@donors.org", "merge_fields": {"FNAME": "Grace", "LNAME": "Hopper"}}
    )

    there = run(TO_MAILCHIMP)
    assert (there["outcomes"]["updated"], there["outcomes"]["echo"]) == (1, 0)
    back = run(TO_VIRTUOUS)
    assert back["outcomes"]["written"] == 1  # Grace, new to Virtuous
    assert back["outcomes"]["echo"] == 1  # Ada's new name, as the other half wrote it
    assert back["outcomes"]["updated"] == 0
    virtuous.import_now()  # Grace's contact transaction becomes a contact

    again = run(TO_MAILCHIMP)
    assert again["outcomes"]["echo"] == 1  # Grace, created from Mailchimp
    assert again["outcomes"]["written"] + again["outcomes"]["updated"] == 0
    assert again["requests"]["sent"] == 0
    last = run(TO_VIRTUOUS)
    assert last["outcomes"]["written"] + last["outcomes"]["updated"] == 0
    assert last["requests"]["sent"] == 0
    assert _names(virtuous, mailchimp, contact_id) == ("Augusta", "Augusta")


@pytest.mark.parametrize("first", [TO_MAILCHIMP, TO_VIRTUOUS])
def test_names_changed_on_both_sides_end_as_virtuous_has_them(
    run, virtuous, mailchimp, first
) -> None:
    """The pair's policy: Virtuous owns the names, whichever half runs first."""
    contact_id = _synced(run, virtuous)
    _advance(virtuous, mailchimp, 60)
    _rename_in_virtuous(virtuous, contact_id, "Augusta")
    _rename_in_mailchimp(mailchimp, "Countess")
    second = TO_VIRTUOUS if first == TO_MAILCHIMP else TO_MAILCHIMP
    for name in (first, second, first, second):
        run(name)
    assert _names(virtuous, mailchimp, contact_id) == ("Augusta", "Augusta")
    assert run(TO_MAILCHIMP)["requests"]["sent"] == 0
    assert run(TO_VIRTUOUS)["requests"]["sent"] == 0


def test_an_address_changed_in_virtuous_does_not_move_the_member(run, virtuous, mailchimp) -> None:
    """Mailchimp owns the address: Virtuous's new one is not written, and no member is added."""
    contact_id = _synced(run, virtuous)
    headers = {"Authorization": f"Bearer {KEY}"}
    contact = httpx.get(f"{virtuous.url}/api/Contact/{contact_id}", headers=headers).json()
    person = contact["contactIndividuals"][0]
    [method] = person["contactMethods"]
    httpx.put(
        f"{virtuous.url}/api/ContactIndividual/{person['id']}",
        json={**person, "contactMethods": [{**method, "value": "ada@elsewhere.org"}]},
        headers=headers,
    ).raise_for_status()
    outcome = run(TO_MAILCHIMP)
    assert outcome["outcomes"]["written"] + outcome["outcomes"]["updated"] == 0
    assert list(mailchimp.state.members[LIST_ID]) == [subscriber_hash(ADA)]


@pytest.mark.parametrize("later", ["virtuous", "mailchimp"])
def test_under_latest_the_later_change_wins(
    folder, run, virtuous, mailchimp, later, invoke
) -> None:
    for name in (TO_MAILCHIMP, TO_VIRTUOUS):
        path = folder / f"{name}.yaml"
        owner = re.compile(r"(?m)^  conflict:\n(?:    .*\n)+")
        path.write_text(owner.sub("  conflict: latest\n", path.read_text()))
    contact_id = _synced(run, virtuous)
    changes = {
        "virtuous": lambda: _rename_in_virtuous(virtuous, contact_id, "Augusta"),
        "mailchimp": lambda: _rename_in_mailchimp(mailchimp, "Countess"),
    }
    earlier = "mailchimp" if later == "virtuous" else "virtuous"
    for side in (earlier, later):
        _advance(virtuous, mailchimp, 60)
        changes[side]()
    # A dry run looks the member up too, and tells what a run would do.
    dry = report(invoke("run", folder / f"{TO_MAILCHIMP}.yaml", "--dry-run", "--json"))
    assert dry["outcomes"]["echo" if later == "mailchimp" else "updated"] == 1
    for name in (TO_MAILCHIMP, TO_VIRTUOUS, TO_MAILCHIMP, TO_VIRTUOUS):
        run(name)
    winner = "Augusta" if later == "virtuous" else "Countess"
    assert _names(virtuous, mailchimp, contact_id) == (winner, winner)
    assert run(TO_MAILCHIMP)["requests"]["sent"] == 0
    assert run(TO_VIRTUOUS)["requests"]["sent"] == 0


HOOK = """
source:
  use: mailchimp.webhook
  with:
    secret: hook-secret-4f1c
    api_key: "${MAILCHIMP_API_KEY}"
    list_id: "${MAILCHIMP_LIST_ID}"
    base_url: "${MAILCHIMP_BASE_URL:-}"
    sources: [user, admin, api]
"""


def _profile_delivery(first: str) -> Delivery:
    """Mailchimp's form-encoded ``profile`` event for Ada, with every merge field."""
    merges = {"EMAIL": ADA, "FNAME": first, "LNAME": "Lovelace", "PHONE": "", "ADDRESS": ""}
    data = {"id": "ab12cd34ef", "email": ADA, "merges": merges, "list_id": LIST_ID}
    body = php_form.encode({"type": "profile", "fired_at": "2030-01-01 12:00:00", "data": data})
    return Delivery("POST", {}, {"secret": "hook-secret-4f1c"}, body.encode(), 0.0)


def test_an_echo_delivered_by_webhook_is_not_sent_back(
    folder, run, virtuous, mailchimp, registry
) -> None:
    """The Mailchimp half served by webhooks (connector serve drains its inbox with
    Runner.sync): Mailchimp's delivery of the other half's write ends as ``echo``."""
    path = folder / f"{TO_VIRTUOUS}.yaml"
    text = path.read_text()
    path.write_text(re.sub(r"(?ms)^source:.*?(?=^# Virtuous needs)", HOOK.lstrip(), text))
    contact_id = _seed_ada(virtuous)
    assert run(TO_MAILCHIMP)["outcomes"]["written"] == 1
    _rename_in_virtuous(virtuous, contact_id, "Augusta")
    assert run(TO_MAILCHIMP)["outcomes"]["updated"] == 1

    recipe = load_recipe(path, registry)
    state = open_state(folder / ".connector" / "state.db")
    try:
        hook = MailchimpWebhook(recipe.source_settings, Context(recipe.name, folder, state))
        events = hook.events(_profile_delivery("Augusta")) + hook.events(_profile_delivery("Ada"))
        echo, change = (Runner(recipe, state).sync([Incoming(e.key, e.record)]) for e in events)
        assert (echo.counts["echo"], echo.requests_sent) == (1, 0)
        # A name changed in Mailchimp is Virtuous's to keep (the pair's owner policy): with
        # Virtuous's name in its place, the payload is the one just seen.
        assert (change.counts["unchanged"], change.requests_sent) == (1, 0)
    finally:
        state.close()
    assert _names(virtuous, mailchimp, contact_id) == ("Augusta", "Augusta")


def test_echo_shows_in_the_report_and_the_state(folder, run, virtuous, invoke) -> None:
    _seed_ada(virtuous)
    run(TO_MAILCHIMP)
    path = folder / f"{TO_VIRTUOUS}.yaml"
    dry = report(invoke("run", path, "--dry-run", "--json"))
    assert (dry["outcomes"]["echo"], dry["requests"]["sent"]) == (1, 0)
    shown = invoke("run", path)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"echo\s+│\s+1", shown.stdout)
    state = invoke("state", "show", path)
    assert "'echo': 1" in state.stdout


def test_a_name_changed_only_in_mailchimp_is_put_back_as_virtuous_has_it(
    run, virtuous, mailchimp
) -> None:
    """Virtuous owns the names: Mailchimp's change is not written to Virtuous, and the next run
    of the other half puts Virtuous's name back in Mailchimp, though its contact is unchanged."""
    contact_id = _synced(run, virtuous)
    _rename_in_mailchimp(mailchimp, "Countess")
    back = run(TO_VIRTUOUS)
    assert back["outcomes"]["written"] + back["outcomes"]["updated"] == 0
    assert run(TO_MAILCHIMP)["outcomes"]["updated"] == 1
    assert _names(virtuous, mailchimp, contact_id) == ("Ada", "Ada")
    assert run(TO_VIRTUOUS)["requests"]["sent"] == 0
    assert run(TO_MAILCHIMP)["requests"]["sent"] == 0
