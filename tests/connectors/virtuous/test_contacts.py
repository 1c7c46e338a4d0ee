"""Contacts into Virtuous: contact transactions (create or merge) and in-place updates."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connectors.virtuous.contact_transactions import (
    ContactTransactions,
    ContactTransactionSettings,
)
from connectors.virtuous.service import service_for
from core.context import Context
from core.errors import RetriableError
from core.http import MemoryBudgetStore, build_client
from core.outcomes import Outcome, WriteItem
from core.state.sqlite import SqliteStateStore
from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import KEY, report

PEOPLE = [
    {"id": "m-1", "first": "Ada", "last": "Lovelace", "email": "ada@example.org"},
    {"id": "m-2", "first": "Grace", "last": "Hopper", "email": "grace@example.org"},
    {"id": "m-3", "first": "Alan", "last": "Turing", "email": "alan@example.org"},
]

CONTACT_TRANSACTIONS = """\
version: 1
name: members
source: {use: file.jsonl, with: {path: people.jsonl, key: id}}
map:
  referenceSource: "'Mailchimp'"
  referenceId: record.id
  firstName: record.first
  lastName: record.last
  email: record.email
  emailType: "'Home Email'"
sink:
  use: virtuous.contact_transactions
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}", batch_size: 2}
"""

UPDATES = """\
version: 1
name: updates
source: {use: file.jsonl, with: {path: people.jsonl, key: id}}
map:
  email: record.email
  firstName: record.first
  informalName: record.nickname
sink:
  use: virtuous.contacts
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}", if_missing: IF_MISSING}
"""


def test_contact_transactions_create_then_merge(virtuous, write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "people.jsonl", PEOPLE)
    recipe = write_recipe(CONTACT_TRANSACTIONS)
    assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 3
    assert len(virtuous.requests("/api/Contact/Batch")) == 1
    assert len(virtuous.requests("/api/Contact/Transaction")) == 1
    assert virtuous.import_now()["contactsCreated"] == 3
    write_jsonl(tmp_path / "people.jsonl", [*PEOPLE[:2], {**PEOPLE[2], "last": "Turing-Smith"}])
    second = report(invoke("run", recipe, "--json"))
    assert second["outcomes"]["updated"] == 1
    assert second["outcomes"]["unchanged"] == 2
    virtuous.import_now()
    contacts = virtuous.state()["contacts"]
    assert len(contacts) == 3
    names = {i["lastName"] for c in contacts for i in c["contactIndividuals"]}
    assert "Turing-Smith" in names


def test_an_invalid_contact_is_dead_lettered_locally(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    write_jsonl(
        tmp_path / "people.jsonl", [PEOPLE[0], {"id": "m-9", "email": "nobody@example.org"}]
    )
    result = report(invoke("run", write_recipe(CONTACT_TRANSACTIONS), "--json"))
    assert result["outcomes"]["written"] == 1
    assert result["outcomes"]["invalid"] == 1
    assert "needs firstName and lastName" in result["problems"][0]["reason"]
    assert len(virtuous.requests("/api/Contact/Transaction")) == 1


def test_updates_change_only_mapped_fields(virtuous, write_recipe, invoke, tmp_path) -> None:
    created = virtuous.control(
        "POST",
        "seed",
        json={
            "contacts": [{"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org"}]
        },
    )
    contact_id = created["contacts"][0]
    httpx.put(
        f"{virtuous.url}/api/Contact/{contact_id}",
        json={"description": "keep me"},
        headers={"Authorization": f"Bearer {KEY}"},
    ).raise_for_status()
    write_jsonl(
        tmp_path / "people.jsonl",
        [{"id": "u-1", "email": "ada@example.org", "first": "Augusta Ada", "nickname": "Ada"}],
    )
    recipe = write_recipe(UPDATES.replace("IF_MISSING", "needs_review"))
    result = report(invoke("run", recipe, "--json"))
    assert result["outcomes"]["updated"] == 1
    [contact] = virtuous.state()["contacts"]
    assert contact["informalName"] == "Ada"
    assert contact["description"] == "keep me"
    assert contact["contactIndividuals"][0]["firstName"] == "Augusta Ada"
    assert contact["contactIndividuals"][0]["lastName"] == "Lovelace"
    assert report(invoke("run", recipe, "--json"))["outcomes"]["unchanged"] == 1


@pytest.mark.parametrize(
    ("if_missing", "outcome"), [("needs_review", "needs_review"), ("create", "written")]
)
def test_a_contact_that_matches_nobody(
    virtuous, write_recipe, invoke, tmp_path, if_missing, outcome
) -> None:
    write_jsonl(
        tmp_path / "people.jsonl", [{"id": "u-2", "email": "new@example.org", "first": "New"}]
    )
    text = UPDATES.replace("IF_MISSING", if_missing).replace(
        "  informalName: record.nickname\n",
        "  informalName: record.nickname\n  lastName: \"'Person'\"\n",
    )
    result = report(invoke("run", write_recipe(text), "--json"))
    assert result["outcomes"][outcome] == 1
    pending = virtuous.state()["counts"]["pending"]
    assert pending == (1 if if_missing == "create" else 0)


def _flaky_sink(calls: list[str], tmp_path: Path) -> ContactTransactions:
    """A contact-transactions sink whose server fails each request once with a 503."""

    def server(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503 if calls.count(request.url.path) % 2 else 200)

    settings = ContactTransactionSettings(base_url="https://virtuous.test", api_key="k-0123456789")
    context = Context("t", tmp_path, SqliteStateStore(tmp_path / "s.db"))
    sink = ContactTransactions(settings, context)
    sink.service = service_for(settings)
    sink.client = build_client(
        sink.service,
        transport=httpx.MockTransport(server),
        store=MemoryBudgetStore(),
        sleep=lambda seconds: None,
    )
    return sink


@pytest.mark.parametrize(
    "who",
    [{"referenceSource": "Mailchimp", "referenceId": "m-1"}, {"email": "ada@example.org"}],
    ids=["reference", "email"],
)
def test_a_contact_the_import_can_match_is_sent_again_after_a_failure(who, tmp_path) -> None:
    calls: list[str] = []
    item = WriteItem("m-1", {"firstName": "Ada", "lastName": "Lovelace", **who})
    results = _flaky_sink(calls, tmp_path).write([item])
    assert [r.outcome for r in results] == [Outcome.WRITTEN]
    assert calls == ["/api/Contact/Transaction"] * 2


def test_a_contact_the_import_cannot_match_is_never_sent_twice(tmp_path) -> None:
    calls: list[str] = []
    item = WriteItem("m-1", {"firstName": "Ada", "lastName": "Lovelace"})
    batch = [item, WriteItem("m-2", {"firstName": "Bo", "lastName": "Li", "email": "b@x.org"})]
    with pytest.raises(RetriableError):  # the runner makes this "failed", for `dlq retry`
        _flaky_sink(calls, tmp_path).write([item])
    with pytest.raises(RetriableError):  # one unmatchable contact makes the whole batch unsafe
        _flaky_sink(calls, tmp_path).write(batch)
    assert calls == ["/api/Contact/Transaction", "/api/Contact/Batch"]
