"""``mailchimp.members`` as a sink: upserts, tags, the batch endpoint, the connection cap."""

from __future__ import annotations

import json

import pytest

from connectors.mailchimp.emulator.store import subscriber_hash
from tests.conftest import write_jsonl
from tests.connectors.mailchimp.conftest import (
    API_KEY,
    LIST_ID,
    assert_refused_without_showing,
    report,
)

RECIPE = """
version: 1
name: donors-to-mailchimp
source:
  use: file.jsonl
  with: {{path: in.jsonl, key: id}}
map:
  email_address: record.email
  merge_fields:
    FNAME: record.first
    LNAME: record.last
  tags: record.tags
sink:
  use: mailchimp.members
  with: {{api_key: "${{MC_KEY}}", list_id: "${{MC_LIST:-L1}}", base_url: "${{MC_URL}}"{extra}}}
"""


@pytest.fixture
def run(mailchimp, monkeypatch, write_recipe, invoke, tmp_path):
    monkeypatch.setenv("MC_KEY", API_KEY)
    monkeypatch.setenv("MC_URL", mailchimp.url)

    def go(rows, **settings):
        extra = "".join(f", {k}: {v}" for k, v in settings.items())
        write_jsonl(tmp_path / "in.jsonl", rows)
        return invoke("run", write_recipe(RECIPE.format(extra=extra)), "--json")

    return go


def donors(n, **changes):
    rows = [
        {
            "id": f"d{i}",
            "email": f"donor{i}@donors.org",
            "first": f"First{i}",
            "last": f"Last{i}",
            "tags": ["Donor"],
        }
        for i in range(1, n + 1)
    ]
    for row in rows:
        row.update(changes.get(row["id"], {}))
    return rows


def member(mailchimp, email):
    return mailchimp.state.members[LIST_ID].get(subscriber_hash(email))


def test_upsert_creates_updates_and_leaves_unchanged_alone(mailchimp, run) -> None:
    first = report(run(donors(3)))
    assert first["outcomes"]["written"] == 3
    ada = member(mailchimp, "donor1@donors.org")
    assert ada.merge_fields == {"FNAME": "First1", "LNAME": "Last1"}
    assert ada.status == "subscribed"
    assert ada.tags == ["Donor"]

    second = report(run(donors(3, d2={"last": "Changed", "tags": ["Donor", "Board"]})))
    assert second["outcomes"]["updated"] == 1
    assert second["outcomes"]["unchanged"] == 2
    assert member(mailchimp, "donor2@donors.org").merge_fields["LNAME"] == "Changed"
    assert member(mailchimp, "donor2@donors.org").tags == ["Donor", "Board"]
    assert len(mailchimp.state.members[LIST_ID]) == 3

    mailchimp.state.requests.clear()
    third = report(run(donors(3, d2={"last": "Changed", "tags": ["Donor", "Board"]})))
    assert third["outcomes"]["unchanged"] == 3
    assert mailchimp.state.requests == []


def test_status_if_new_applies_only_to_new_members(mailchimp, run) -> None:
    mailchimp.seed({"email_address": "donor1@donors.org", "status": "unsubscribed"})
    result = report(run(donors(2), status_if_new="pending"))
    assert result["outcomes"]["written"] == 2
    assert member(mailchimp, "donor1@donors.org").status == "unsubscribed"
    assert member(mailchimp, "donor2@donors.org").status == "pending"
    assert member(mailchimp, "donor1@donors.org").merge_fields["FNAME"] == "First1"


def test_a_member_mailchimp_refuses_is_dead_lettered_with_its_detail(mailchimp, run) -> None:
    rows = donors(3, d2={"email": "fake@example.com"})
    result = run(rows)
    assert result.exit_code == 1
    outcome = report(result)
    assert outcome["outcomes"]["written"] == 2
    assert outcome["outcomes"]["invalid"] == 1
    (problem,) = outcome["problems"]
    assert problem["key"] == "d2"
    assert (
        "fake@example.com looks fake or invalid, please enter a real email address."
        in problem["reason"]
    )
    assert len(mailchimp.state.members[LIST_ID]) == 2


def test_an_address_that_is_no_address_never_leaves(mailchimp, run) -> None:
    outcome = report(run(donors(2, d1={"email": "not an address"})))
    assert outcome["outcomes"]["invalid"] == 1
    assert outcome["problems"][0]["field"] == "email_address"
    assert len(mailchimp.requests("PUT")) == 1


def test_large_batches_use_the_batch_endpoint(mailchimp, run) -> None:
    rows = donors(60, d7={"email": "fake@example.com"}, d9={"tags": []})
    outcome = report(run(rows))
    assert outcome["outcomes"]["written"] == 59
    assert outcome["outcomes"]["invalid"] == 1
    (problem,) = outcome["problems"]
    assert problem["key"] == "d7"
    assert "fake@example.com looks fake or invalid" in problem["reason"]
    assert len(mailchimp.requests("POST", f"/lists/{LIST_ID}")) == 1
    assert mailchimp.requests("PUT") == []
    assert len(mailchimp.requests("POST", "/tags")) == 58  # everyone written, but d9
    assert member(mailchimp, "donor60@donors.org").tags == ["Donor"]
    assert member(mailchimp, "donor60@donors.org").merge_fields["FNAME"] == "First60"


def test_never_more_than_ten_connections(mailchimp, run) -> None:
    mailchimp.state.faults.update(latency_seconds=0.05)
    outcome = report(run(donors(40), batch_threshold=1000))
    assert outcome["outcomes"]["written"] == 40
    assert 1 < mailchimp.state.max_in_flight <= 10
    assert mailchimp.state.rejected_connections == 0


def test_a_changed_address_moves_the_member(mailchimp, run) -> None:
    report(run(donors(2)))
    outcome = report(run(donors(2, d1={"email": "first.one@donors.org"})))
    assert outcome["outcomes"]["updated"] == 1
    assert member(mailchimp, "donor1@donors.org") is None
    moved = member(mailchimp, "first.one@donors.org")
    assert moved.merge_fields["FNAME"] == "First1"
    assert len(mailchimp.state.members[LIST_ID]) == 2


def test_a_refused_key_stops_the_run_without_showing_it(
    mailchimp, run, monkeypatch, tmp_path
) -> None:
    wrong = "mcwrongsecret11cc22dd-us1"
    monkeypatch.setenv("MC_KEY", wrong)
    result = run(donors(3))
    assert_refused_without_showing(result, wrong, tmp_path)
    # It stopped at the refusal instead of trying every member.
    assert len(mailchimp.requests("PUT")) <= 10


def test_the_batch_endpoint_keeps_status_if_new_for_existing_members(mailchimp, run) -> None:
    """Over the batch threshold, a member already in the audience keeps their status: only a
    new member gets status_if_new, exactly as with the member-by-member PUT."""
    mailchimp.seed(
        {"email_address": "donor1@donors.org", "status": "subscribed"},
        {"email_address": "donor2@donors.org", "status": "unsubscribed"},
        {"email_address": "donor3@donors.org", "status": "subscribed", "merge_fields": {}},
    )
    outcome = report(run(donors(60), status_if_new="pending"))
    assert outcome["outcomes"]["written"] == 60
    assert member(mailchimp, "donor1@donors.org").status == "subscribed"
    assert member(mailchimp, "donor2@donors.org").status == "unsubscribed"
    assert member(mailchimp, "donor3@donors.org").merge_fields["FNAME"] == "First3"
    assert member(mailchimp, "donor3@donors.org").tags == ["Donor"]
    assert member(mailchimp, "donor60@donors.org").status == "pending"
    # The new members went in one batch call; the three existing ones were upserted one by one.
    assert len(mailchimp.requests("POST", f"/lists/{LIST_ID}")) == 1
    assert len(mailchimp.requests("PUT")) == 3


def test_a_row_without_the_address_is_dead_lettered_naming_the_field(mailchimp, run) -> None:
    rows = donors(2)
    del rows[0]["email"]  # the mapping reads record.email: a missing field reads as null
    result = run(rows)
    assert result.exit_code == 1
    outcome = report(result)
    assert (outcome["outcomes"]["written"], outcome["outcomes"]["invalid"]) == (1, 1)
    (problem,) = outcome["problems"]
    assert (problem["key"], problem["field"]) == ("d1", "email_address")
    assert len(mailchimp.requests("PUT")) == 1


@pytest.mark.parametrize("rows", [3, 60], ids=["member by member", "batch endpoint"])
def test_an_unknown_audience_stops_the_run_instead_of_dead_lettering_everyone(
    mailchimp, run, monkeypatch, invoke, tmp_path, rows
) -> None:
    monkeypatch.setenv("MC_LIST", "Donors")  # the audience's name, not its id
    result = run(donors(rows))
    assert result.exit_code == 3
    assert "Mailchimp has no audience 'Donors' for this API key; check list_id" in result.output
    letters = invoke("dlq", "list", tmp_path / "recipe.yaml", "--json")
    assert json.loads(letters.stdout) == []
    assert len(mailchimp.state.members[LIST_ID]) == 0


@pytest.mark.parametrize("rows", [3, 60], ids=["member by member", "batch endpoint"])
def test_a_429_storm_is_waited_out_and_counted(mailchimp, run, rows) -> None:
    """Mailchimp's 429s (problem+json, with Retry-After) make the run wait, never fail."""
    mailchimp.state.faults.update(rate_limit_storm=4, storm_retry_after=0)
    result = run(donors(rows))
    assert result.exit_code == 0, result.output
    outcome = report(result)
    assert outcome["outcomes"]["written"] == rows
    assert outcome["rate_limit_waits"] >= 4
    assert len(mailchimp.state.members[LIST_ID]) == rows


def test_5xx_answers_are_retried_until_mailchimp_answers(mailchimp, run) -> None:
    # Rare enough that no request meets five in a row (the retry policy's tries).
    mailchimp.state.faults.update(error_rate=0.15, error_statuses=[500, 502, 503], seed=3)
    outcome = report(run(donors(20), batch_threshold=1000))
    assert outcome["outcomes"]["written"] == 20
    retried = len(mailchimp.requests("PUT")) + len(mailchimp.requests("POST", "/tags")) - 40
    assert retried > 0  # some were answered 5xx and sent again
