"""``mailchimp.webhook``: the URL's secret, events read as members, and the emulator's webhooks."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.mailchimp.members_source import MembersSettings, MembersSource
from connectors.mailchimp.php_form import encode
from connectors.mailchimp.service import subscriber_hash
from connectors.mailchimp.webhook import MailchimpWebhook, MailchimpWebhookSettings
from core.context import Context
from core.errors import ConnectorError
from core.webhooks import Delivery, MalformedDelivery, WebhookRejected
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, Emulator, serving
from tests.receiver import Receiver, receiving

SECRET = "mc-hook-5e1f"


def _source(context: Context, base_url: str = "http://127.0.0.1:9/3.0", **settings: Any) -> Any:
    given = {"api_key": API_KEY, "list_id": LIST_ID, "base_url": base_url, "secret": SECRET}
    return MailchimpWebhook(MailchimpWebhookSettings.model_validate(given | settings), context)


def _delivery(form: dict[str, Any], query: dict[str, str] | None = None) -> Delivery:
    return Delivery(
        "POST",
        {"content-type": "application/x-www-form-urlencoded"},
        {"secret": SECRET} if query is None else query,
        encode(form).encode(),
        time.time(),
    )


SUBSCRIBE = {
    "type": "subscribe",
    "fired_at": "2026-03-01 10:00:05",
    "data": {
        "id": "8a25ff1d98",
        "list_id": LIST_ID,
        "email": "Ada@Donors.org",
        "email_type": "html",
        "web_id": "1001",
        "ip_opt": "10.0.0.1",
        "merges": {
            "EMAIL": "Ada@Donors.org",
            "FNAME": "Ada",
            "LNAME": "Lovelace",
            "ADDRESS": {"addr1": "1 Main St", "city": "Springfield", "country": "US"},
            "INTERESTS": "News",
        },
    },
}


# --- the URL's secret --------------------------------------------------------------------------


def test_a_delivery_with_the_secret_in_its_url_is_accepted(context: Context) -> None:
    _source(context).verify(_delivery(SUBSCRIBE))


@pytest.mark.parametrize(
    ("case", "query"),
    [
        ("wrong secret", {"secret": "guess"}),
        ("missing secret", {}),
        ("empty secret", {"secret": ""}),
        ("secret under another name", {"key": SECRET}),
        ("the secret with a suffix", {"secret": SECRET + "x"}),
    ],
)
def test_each_wrong_secret_is_rejected(context: Context, case: str, query: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected, match="secret"):
        _source(context).verify(_delivery(SUBSCRIBE, query))


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_nothing_is_accepted_or_subscribed(
    context: Context, secret: str | None
) -> None:
    source = _source(context, secret=secret)
    with pytest.raises(WebhookRejected, match="has no secret"):
        source.verify(_delivery(SUBSCRIBE, {"secret": ""}))
    with pytest.raises(ConnectorError, match="set with: secret: before subscribing"):
        source.subscribe("https://hooks.example.org/hooks/audience")


def test_the_url_check_is_answered_200_with_the_secret_and_401_without(context: Context) -> None:
    source = _source(context)
    check = Delivery("GET", {"user-agent": "MailChimp.com WebHook Validator"}, {}, b"", 0)
    assert "GET" in source.validation_methods
    assert source.answer_validation(check)[0] == 401
    assert source.answer_validation(_delivery({}, {"secret": SECRET})) == (200, "")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"events": ["subscribe", "resubscribe"]}, "choose from subscribe, unsubscribe"),
        ({"sources": ["robot"]}, "sources"),
    ],
)
def test_settings_that_cannot_work_are_refused(
    context: Context, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _source(context, **settings)


# --- events as members -------------------------------------------------------------------------


def test_a_subscribe_reads_as_the_member_keyed_by_its_subscriber_hash(context: Context) -> None:
    [event] = _source(context).events(_delivery(SUBSCRIBE))
    assert (event.type, event.key, event.occurred_at) == (
        "subscribe",
        subscriber_hash("ada@donors.org"),
        "2026-03-01T10:00:05+00:00",
    )
    assert event.record == {
        "id": subscriber_hash("ada@donors.org"),
        "email_address": "Ada@Donors.org",
        "unique_email_id": "8a25ff1d98",
        "web_id": 1001,
        "status": "subscribed",
        "merge_fields": {
            "FNAME": "Ada",
            "LNAME": "Lovelace",
            "ADDRESS": {"addr1": "1 Main St", "city": "Springfield", "country": "US"},
        },
        "email_type": "html",
        "ip_opt": "10.0.0.1",
        "list_id": LIST_ID,
        "last_changed": "2026-03-01T10:00:05+00:00",
    }


@pytest.mark.parametrize(
    ("kind", "extra", "status"),
    [
        ("unsubscribe", {"action": "unsub", "reason": "manual"}, "unsubscribed"),
        ("unsubscribe", {"action": "delete", "reason": "manual"}, "archived"),
        ("cleaned", {"reason": "hard", "campaign_id": "c1"}, "cleaned"),
        ("profile", {}, None),
    ],
)
def test_the_status_is_what_the_event_says(
    context: Context, kind: str, extra: dict[str, str], status: str | None
) -> None:
    form = {**SUBSCRIBE, "type": kind, "data": {**SUBSCRIBE["data"], **extra}}
    [event] = _source(context).events(_delivery(form))
    assert event.record.get("status") == status
    assert event.extra == extra


def test_a_new_address_is_keyed_by_the_new_one_and_keeps_the_old(context: Context) -> None:
    form = {
        "type": "upemail",
        "fired_at": "2026-03-01 10:00:05",
        "data": {
            "list_id": LIST_ID,
            "new_id": "n1",
            "new_email": "a@new.org",
            "old_email": "a@o.org",
        },
    }
    [event] = _source(context).events(_delivery(form))
    assert event.key == subscriber_hash("a@new.org")
    assert event.record["previous_email_address"] == "a@o.org"
    assert event.extra["previous_id"] == subscriber_hash("a@o.org")


def test_a_campaign_event_is_no_member_and_is_only_processed_when_selected(
    context: Context,
) -> None:
    form = {
        "type": "campaign",
        "fired_at": "",
        "data": {"id": "c9", "subject": "Hi", "list_id": "L"},
    }
    source = _source(context, events=["subscribe"])
    [event] = source.events(_delivery(form))
    assert (event.key, event.record["subject"]) == ("campaign:c9", "Hi")
    assert not source.selects(event)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"data[email]=a@b.org", "no type"),
        (b"type=subscribe&data=flat", "no type and data"),
        (b"type=subscribe&data[list_id]=L1", r"no data\[email\]"),
        (b"type=upemail&data[old_email]=a@b.org", r"no data\[new_email\]"),
        (b"type=profile&data" + b"[x]" * 20 + b"=1", "nests deeper"),
        (b"type=\xff", "not a form"),
    ],
)
def test_a_body_that_cannot_be_read_is_malformed(
    context: Context, body: bytes, message: str
) -> None:
    delivery = Delivery("POST", {}, {"secret": SECRET}, body, 0)
    with pytest.raises(MalformedDelivery, match=message):
        _source(context).events(delivery)


# --- the emulator ------------------------------------------------------------------------------


@pytest.fixture
def hooked(context: Context) -> Iterator[tuple[Emulator, Receiver, MailchimpWebhook]]:
    with serving(webhook_delay_scale=0.001) as mailchimp, receiving() as receiver:
        source = _source(context, mailchimp.url, sources=["user", "admin", "api"])
        source.subscribe(receiver.url)
        yield mailchimp, receiver, source


def _put(mailchimp: Emulator, email: str, **body: Any) -> None:
    response = httpx.put(
        f"{mailchimp.url}/lists/{LIST_ID}/members/{subscriber_hash(email)}",
        json={"email_address": email, "status_if_new": "subscribed", **body},
        auth=("user", API_KEY),
    )
    assert response.is_success, response.text


def test_member_changes_are_delivered_form_encoded_and_read_as_the_members_source_reads(
    context: Context, hooked: tuple[Emulator, Receiver, MailchimpWebhook]
) -> None:
    mailchimp, receiver, source = hooked
    _put(mailchimp, "grace@donors.org", merge_fields={"FNAME": "Grace"})
    _put(mailchimp, "grace@donors.org", merge_fields={"LNAME": "Hopper"})
    _put(mailchimp, "grace@donors.org", status="unsubscribed")
    assert receiver.wait_for(lambda posts: len(posts) == 3)
    posts = receiver.posts()
    assert {d.headers["content-type"] for d in posts} == {"application/x-www-form-urlencoded"}
    for delivery in posts:
        source.verify(delivery)
    events = [source.events(d)[0] for d in posts]
    assert [e.type for e in events] == ["subscribe", "profile", "unsubscribe"]
    members = MembersSource(
        MembersSettings(api_key=API_KEY, list_id=LIST_ID, base_url=mailchimp.url), context
    )
    [member] = list(members.read(None))
    last = events[-1]
    assert last.key == members.key(member)
    # What the delivery says, it says as the members source does; the rest needs refetch.
    assert last.record == {k: member[k] for k in last.record}
    assert source.refetch(last) == member


def test_subscribers_changes_reach_a_webhook_that_leaves_out_api_changes(
    context: Context, hooked: tuple[Emulator, Receiver, MailchimpWebhook]
) -> None:
    mailchimp, receiver, _ = hooked
    people_only = _source(context, mailchimp.url, events=["upemail"])
    with receiving("/hooks/people") as other:
        people_only.subscribe(other.url)
        _put(mailchimp, "lin@donors.org")
        change = {"as": "user", "email_address": "lin@donors.org", "new_email_address": "l@d.org"}
        httpx.post(f"{mailchimp.server.url}/_emulator/act", json=change).raise_for_status()
        assert other.wait_for(lambda posts: len(posts) == 1)
        [event] = people_only.events(other.posts()[0])
        assert (event.type, event.record["email_address"]) == ("upemail", "l@d.org")
    assert receiver.wait_for(lambda posts: len(posts) == 2)  # subscribe (api), upemail (user)


def test_a_failed_delivery_is_retried_with_growing_delays(
    hooked: tuple[Emulator, Receiver, MailchimpWebhook],
) -> None:
    mailchimp, receiver, _ = hooked
    receiver.fail = [500, 408]
    _put(mailchimp, "ida@donors.org")
    assert receiver.wait_for(lambda posts: len(posts) == 3)
    assert mailchimp.state.deliverer.wait_idle(5)
    attempts = mailchimp.state.deliverer.attempts()
    assert [(a.number, a.status) for a in attempts] == [(1, 500), (2, 408), (3, 200)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.001 * d for gap, d in zip(gaps, (60, 300), strict=True))


def test_subscriptions_are_listed_and_removed_without_showing_the_secret(
    hooked: tuple[Emulator, Receiver, MailchimpWebhook],
) -> None:
    mailchimp, receiver, source = hooked
    [hook] = source.subscriptions()
    assert SECRET not in hook.url
    assert hook.url.startswith(receiver.url)
    [stored] = mailchimp.state.webhooks[LIST_ID].values()
    assert f"secret={SECRET}" in stored.url  # Mailchimp delivers to the URL with the secret
    source.unsubscribe(hook.id)
    assert source.subscriptions() == []
    with pytest.raises(ConnectorError, match=f"no webhook {hook.id}"):
        source.unsubscribe(hook.id)
