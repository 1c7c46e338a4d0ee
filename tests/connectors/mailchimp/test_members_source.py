"""``mailchimp.members`` as a source: paging, incremental runs, statuses, the record's shape."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from connectors.mailchimp.emulator import app as emulator_app
from connectors.mailchimp.members_source import MembersSettings, MembersSource
from connectors.mailchimp.service import subscriber_hash
from tests.conftest import read_jsonl
from tests.connectors.mailchimp.conftest import (
    API_KEY,
    LIST_ID,
    ada_member,
    assert_refused_without_showing,
    day,
    people,
    report,
)

RECIPE = """
version: 1
name: mailchimp-members-out
source:
  use: mailchimp.members
  with: {api_key: "${MC_KEY}", list_id: L1, base_url: "${MC_URL}", page_size: 2,
         overlap_seconds: 0}
map:
  id: record.id
  email: record.email_address
  first: record.merge_fields.FNAME
  status: record.status
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""


@pytest.fixture
def env(mailchimp, monkeypatch):
    monkeypatch.setenv("MC_KEY", API_KEY)
    monkeypatch.setenv("MC_URL", mailchimp.url)


def source(mailchimp, context, **options) -> MembersSource:
    settings = MembersSettings.model_validate(
        {"api_key": API_KEY, "list_id": LIST_ID, "base_url": mailchimp.url, **options}
    )
    return MembersSource(settings, context)


def queries(mailchimp) -> list[dict[str, list[str]]]:
    return [parse_qs(r["query"]) for r in mailchimp.requests("GET", "/members")]


def test_reads_every_member_page_by_page(mailchimp, context) -> None:
    mailchimp.seed(*people(25))
    members = list(source(mailchimp, context, page_size=10).read(None))
    assert [m["email_address"] for m in members] == [f"donor{i}@donors.org" for i in range(1, 26)]
    sent = queries(mailchimp)
    assert len(sent) == 3
    assert all(q["sort_field"] == ["last_changed"] and q["sort_dir"] == ["ASC"] for q in sent)
    assert all(q["count"] == ["10"] for q in sent)


def test_records_keep_merge_fields_tags_status_and_last_change(mailchimp, context) -> None:
    mailchimp.seed(ada_member(last_changed=day(3)))
    read = source(mailchimp, context)
    (member,) = read.read(None)
    assert member["merge_fields"]["FNAME"] == "Ada"
    assert member["merge_fields"]["ADDRESS"]["city"] == "Springfield"
    assert member["tags"] == [{"id": 1000, "name": "Donor"}]
    assert member["status"] == "subscribed"
    assert member["last_changed"] == "2024-01-04T00:00:00+00:00"
    assert "_links" not in member
    assert read.key(member) == member["id"] == "cfb99b840563810dcc4dc97b89f18baf"
    assert read.cursor_value(member) == "2024-01-04T00:00:00+00:00"
    assert (
        read.cursor_value({"last_changed": "2024-01-04T02:00:00+02:00"})
        == "2024-01-04T00:00:00+00:00"
    )


def test_one_status_is_filtered_by_mailchimp(mailchimp, context) -> None:
    mailchimp.seed(
        *people(3),
        {"email_address": "u@donors.org", "status": "unsubscribed"},
        {"email_address": "c@donors.org", "status": "cleaned"},
    )
    members = list(source(mailchimp, context, statuses=["unsubscribed"]).read(None))
    assert [m["email_address"] for m in members] == ["u@donors.org"]
    assert queries(mailchimp)[0]["status"] == ["unsubscribed"]


def test_several_statuses_are_read_in_one_ordered_listing(mailchimp, context) -> None:
    mailchimp.seed(
        *people(2),
        {"email_address": "u@donors.org", "status": "unsubscribed"},
        {"email_address": "c@donors.org", "status": "cleaned"},
    )
    members = list(source(mailchimp, context, statuses=["subscribed", "unsubscribed"]).read(None))
    assert {m["status"] for m in members} == {"subscribed", "unsubscribed"}
    assert len(members) == 3
    assert "status" not in queries(mailchimp)[0]


@pytest.mark.parametrize("changes", [1, 3], ids=["within-the-overlap", "beyond-it"])
def test_members_changing_mid_read_make_nobody_skipped(mailchimp, context, changes) -> None:
    mailchimp.seed(*people(30))
    reading = source(mailchimp, context, page_size=8).read(None)
    first_page = [next(reading) for _ in range(8)]
    # Members already read change: they jump to the end, everyone behind them moves up.
    for member in first_page[1 : 1 + changes]:
        mailchimp.state.upsert(
            LIST_ID,
            member["id"],
            {"email_address": member["email_address"], "merge_fields": {"FNAME": "Changed"}},
        )
    rest = list(reading)
    emails = {m["email_address"] for m in first_page + rest}
    assert emails == {f"donor{i}@donors.org" for i in range(1, 31)}
    changed = [m for m in rest if m["merge_fields"]["FNAME"] == "Changed"]
    assert len(changed) == changes  # and the new versions are read too


def test_second_run_reads_only_members_changed_since(
    mailchimp, env, write_recipe, invoke, tmp_path
) -> None:
    mailchimp.seed(*people(5))
    recipe = write_recipe(RECIPE)
    first = report(invoke("run", recipe, "--json"))
    assert first["outcomes"]["written"] == 5
    assert "since_last_changed" not in queries(mailchimp)[0]
    for i in (2, 4):
        email = f"donor{i}@donors.org"
        mailchimp.state.upsert(
            LIST_ID, email, {"email_address": email, "merge_fields": {"FNAME": f"New{i}"}}
        )
    mailchimp.state.requests.clear()
    second = report(invoke("run", recipe, "--json"))
    assert second["records_read"] == 2
    assert second["outcomes"]["updated"] == 2
    assert queries(mailchimp)[0]["since_last_changed"] == ["2024-01-06T00:00:00+00:00"]
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["first"] for r in out[-2:]] == ["New2", "New4"]


def test_a_refused_key_stops_the_run_naming_mailchimp(
    mailchimp, env, monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    wrong = "mcwrongsecret55aa66bb-us1"
    monkeypatch.setenv("MC_KEY", wrong)
    result = invoke("run", write_recipe(RECIPE), "--json")
    assert_refused_without_showing(result, wrong, tmp_path)


def test_an_unknown_audience_stops_the_run_naming_it(mailchimp, env, write_recipe, invoke) -> None:
    result = invoke("run", write_recipe(RECIPE.replace("list_id: L1", "list_id: Donors")))
    assert result.exit_code == 3
    assert "Mailchimp has no audience 'Donors' for this API key; check list_id" in result.output


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda member: member.pop("email_address"), "email_address"),
        (lambda member: member.update(status=1), "status"),
    ],
    ids=["no address", "a numeric status"],
)
def test_a_member_that_breaks_the_contract_is_dead_lettered_naming_the_field(
    mailchimp, env, write_recipe, invoke, monkeypatch, breakage, field
) -> None:
    """Mailchimp sends a member without what the source relies on: that member is not read (a
    dead letter naming the field, logged once), and the rest of the run goes on."""
    broken = {"donor2@donors.org", "donor4@donors.org"}
    shown = emulator_app.member_json

    def member_json(list_id, member, state):
        shape = shown(list_id, member, state)
        if member.email in broken:
            breakage(shape)
        return shape

    monkeypatch.setattr(emulator_app, "member_json", member_json)
    mailchimp.seed(*people(5))
    result = invoke("run", write_recipe(RECIPE), "--json")
    assert result.exit_code == 1, result.output
    outcome = report(result)
    assert outcome["outcomes"]["written"] == 3
    assert outcome["outcomes"]["invalid"] == 2
    keys = {subscriber_hash(email) for email in broken}
    assert {p["key"] for p in outcome["problems"]} == keys
    for problem in outcome["problems"]:
        assert f"'{field}'" in problem["reason"]
        assert "Mailchimp" in problem["reason"]
    # Said once on the terminal, however many members it hits.
    assert result.stderr.count(f"records whose '{field}' is") == 1
