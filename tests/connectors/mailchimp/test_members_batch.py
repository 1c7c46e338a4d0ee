"""The batch subscribe path of the members sink: which members it takes, which it hands back."""

from __future__ import annotations

from connectors.mailchimp import members_batch
from connectors.mailchimp.members_batch import subscribe_all
from connectors.mailchimp.service import MailchimpSettings, lists_api, subscriber_hash
from core.outcomes import Outcome, WriteItem
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID


def api(mailchimp, context):
    settings = MailchimpSettings.model_validate(
        {"api_key": API_KEY, "list_id": LIST_ID, "base_url": mailchimp.url}
    )
    return lists_api(settings, context)


def item(n: int, **payload: object) -> WriteItem:
    return WriteItem(f"k{n}", {"email_address": f"m{n}@donors.org", **payload})


def status(mailchimp, n: int) -> str:
    return mailchimp.state.members[LIST_ID][subscriber_hash(f"m{n}@donors.org")].status


def test_a_stated_status_applies_to_everyone_new_or_not(mailchimp, context) -> None:
    mailchimp.seed({"email_address": "m1@donors.org", "status": "subscribed"})
    outcome = subscribe_all(
        api(mailchimp, context), LIST_ID, [item(1, status="unsubscribed"), item(2)], "pending"
    )
    assert [i.key for i in outcome.taken] == ["k1", "k2"]
    assert outcome.existing == outcome.results == []
    assert (status(mailchimp, 1), status(mailchimp, 2)) == ("unsubscribed", "pending")
    calls = mailchimp.requests("POST", f"/lists/{LIST_ID}")
    assert len(calls) == 2  # one call with update_existing, one without


def test_existing_members_without_a_stated_status_are_handed_back(mailchimp, context) -> None:
    mailchimp.seed({"email_address": "m1@donors.org", "status": "subscribed"})
    bad = WriteItem("k3", {"email_address": "someone@example.com"})
    outcome = subscribe_all(api(mailchimp, context), LIST_ID, [item(1), item(2), bad], "pending")
    assert [i.key for i in outcome.taken] == ["k2"]
    assert [i.key for i in outcome.existing] == ["k1"]
    (refused,) = outcome.results
    assert (refused.key, refused.outcome) == ("k3", Outcome.INVALID)
    assert "looks fake or invalid" in (refused.reason or "")
    assert status(mailchimp, 1) == "subscribed"  # untouched: the sink upserts it with PUT


def test_chunks_are_at_most_the_batch_maximum(mailchimp, context, monkeypatch) -> None:
    monkeypatch.setattr(members_batch, "BATCH_MAX", 3)
    outcome = subscribe_all(
        api(mailchimp, context), LIST_ID, [item(n) for n in range(7)], "pending"
    )
    assert len(outcome.taken) == 7
    assert len(mailchimp.requests("POST", f"/lists/{LIST_ID}")) == 3
