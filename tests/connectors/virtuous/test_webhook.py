"""``virtuous.webhook``: signatures, events, and the emulator's deliveries and subscriptions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.virtuous.queries import QuerySettings, VirtuousGifts
from connectors.virtuous.webhook import VirtuousWebhook, VirtuousWebhookSettings
from core.context import Context
from core.errors import ConnectorError
from core.state import open_state
from core.webhooks import Delivery, MalformedDelivery, WebhookRejected
from tests.connectors.virtuous.support import KEY, Virtuous, running
from tests.receiver import Receiver, receiving

SECRET = "whsec-virtuous-3d9a"
GIFT = {
    "id": 100001,
    "contactId": 1001,
    "amount": 25.0,
    "modifiedDateTimeUtc": "2026-03-01T10:00:00",
    "customFields": {"Receipt Status": "Sent"},
}


def _sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _delivery(body: bytes, headers: dict[str, str] | None = None) -> Delivery:
    signed = {"x-virtuous-signature": _sign(body)} if headers is None else headers
    return Delivery("POST", signed, {}, body, time.time())


def _body(event: str = "GiftCreate", **obj: Any) -> bytes:
    name = "gift" if event.startswith("Gift") else "contact"
    return json.dumps({"event": event, name: obj or GIFT}).encode()


@pytest.fixture
def context(tmp_path: Path) -> Iterator[Context]:
    store = open_state(tmp_path / "state.db")
    context = Context(recipe="hooks", base_dir=tmp_path, state=store)
    yield context
    context.close()
    store.close()


def _source(context: Context, **settings: Any) -> VirtuousWebhook:
    settings = {"secret": SECRET, "events": ["GiftCreate", "GiftUpdate"], **settings}
    return VirtuousWebhook(VirtuousWebhookSettings.model_validate(settings), context)


# --- signatures --------------------------------------------------------------------------------


def test_a_delivery_signed_with_the_secret_is_accepted(context: Context) -> None:
    _source(context).verify(_delivery(_body()))


@pytest.mark.parametrize(
    ("case", "headers", "body"),
    [
        ("wrong secret", {"x-virtuous-signature": _sign(_body(), "another")}, _body()),
        ("tampered body", {"x-virtuous-signature": _sign(_body())}, _body(id=666)),
        ("missing header", {}, _body()),
        (
            "hex instead of base64",
            {"x-virtuous-signature": hmac.new(SECRET.encode(), _body(), "sha256").hexdigest()},
            _body(),
        ),
        ("empty header", {"x-virtuous-signature": ""}, _body()),
    ],
)
def test_each_wrong_signature_is_rejected(
    context: Context, case: str, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(WebhookRejected, match="X-Virtuous-Signature"):
        _source(context).verify(_delivery(body, headers))


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_every_delivery_is_rejected(context: Context, secret: str | None) -> None:
    with pytest.raises(WebhookRejected, match="has no secret"):
        _source(context, secret=secret).verify(_delivery(_body()))


def test_the_signature_header_can_be_renamed(context: Context) -> None:
    source = _source(context, signature_header="X-Hook-Sig")
    source.verify(_delivery(_body(), {"x-hook-sig": _sign(_body())}))
    with pytest.raises(WebhookRejected, match="without a X-Hook-Sig header"):
        source.verify(_delivery(_body()))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"secret": SECRET}, "set events: gift events or contact events"),
        ({"secret": SECRET, "events": ["GiftCreate", "ContactUpdate"]}, "use one recipe for each"),
        ({"secret": SECRET, "events": ["GiftCreated"]}, "choose from ContactCreate"),
        ({"secret": SECRET, "events": ["GiftCreate"], "refetch": True}, "set api_key"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_valid_choices(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        VirtuousWebhookSettings.model_validate(settings)


# --- events ------------------------------------------------------------------------------------


def test_a_gift_event_is_keyed_by_the_gift_id_with_custom_fields_as_reads_give_them(
    context: Context,
) -> None:
    [event] = _source(context).events(_delivery(_body()))
    assert (event.type, event.key, event.occurred_at) == (
        "GiftCreate",
        "100001",
        "2026-03-01T10:00:00",
    )
    assert event.record["customFields"] == [
        {"name": "Receipt Status", "value": "Sent", "displayName": "Receipt Status"}
    ]
    assert event.record["amount"] == 25.0


def test_events_the_recipe_does_not_select_are_returned_but_not_selected(
    context: Context,
) -> None:
    source = _source(context)
    [delete] = source.events(_delivery(_body("GiftDelete")))
    [project] = source.events(
        _delivery(json.dumps({"event": "ProjectCreate", "project": {"id": 7}}).encode())
    )
    [form] = source.events(_delivery(b'{"event": "FormSubmission", "answers": "x"}'))
    assert (delete.key, project.key, form.key) == ("100001", "project:7", "FormSubmission:")
    assert not any(source.selects(e) for e in (delete, project, form))
    assert source.selects(source.events(_delivery(_body("GiftUpdate")))[0])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"gift": {"id": 1}}', 'no "event"'),
        (b'{"event": "GiftCreate", "contact": {"id": 1}}', "no gift with an id"),
        (b'{"event": "GiftCreate", "gift": {"amount": 5}}', "no gift with an id"),
    ],
)
def test_a_signed_body_that_cannot_be_read_is_malformed(
    context: Context, body: bytes, message: str
) -> None:
    source = _source(context)
    delivery = _delivery(body)
    source.verify(delivery)
    with pytest.raises(MalformedDelivery, match=message):
        source.events(delivery)


# --- the emulator: subscriptions, deliveries, retries ------------------------------------------


def _api_source(context: Context, virtuous: Virtuous, **settings: Any) -> VirtuousWebhook:
    return _source(context, base_url=virtuous.url, api_key=KEY, **settings)


def _gift_transaction(virtuous: Virtuous, transaction_id: str) -> None:
    body = {
        "transactionSource": "Test",
        "transactionId": transaction_id,
        "amount": "40.00",
        "giftDate": "2026-03-01",
        "giftType": "Credit",
        "contact": {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org"},
    }
    response = httpx.post(
        f"{virtuous.url}/api/v2/Gift/Transaction",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def hooked(context: Context) -> Iterator[tuple[Virtuous, Receiver, VirtuousWebhook]]:
    """An emulator whose retry schedule runs in milliseconds, with a subscription to a receiver."""
    with running(webhook_delay_scale=0.001) as virtuous, receiving() as receiver:
        source = _api_source(context, virtuous)
        source.subscribe(receiver.url)
        yield virtuous, receiver, source


def test_the_import_run_delivers_a_signed_gift_create_whose_record_equals_the_polled_one(
    context: Context, hooked: tuple[Virtuous, Receiver, VirtuousWebhook]
) -> None:
    virtuous, receiver, source = hooked
    _gift_transaction(virtuous, "t-1")
    virtuous.import_now()
    assert receiver.wait_for(lambda posts: len(posts) == 1)
    [delivery] = receiver.posts()
    source.verify(delivery)
    [event] = source.events(delivery)
    polled = VirtuousGifts(
        QuerySettings(base_url=virtuous.url, api_key=KEY, rate_window_seconds=1), context
    )
    [record] = list(polled.read(None))
    assert event.type == "GiftCreate"
    assert event.key == polled.key(record)
    assert event.record == record
    assert source.refetch(event) == record


def test_a_failed_delivery_is_retried_with_growing_delays(
    hooked: tuple[Virtuous, Receiver, VirtuousWebhook],
) -> None:
    virtuous, receiver, _ = hooked
    receiver.fail = [500, 503, 404]
    _gift_transaction(virtuous, "t-2")
    virtuous.import_now()
    assert receiver.wait_for(lambda posts: len(posts) == 4)
    deliverer = virtuous.app.state.emulator.deliverer
    assert deliverer.wait_idle(5)
    attempts = deliverer.attempts()
    assert [(a.number, a.status) for a in attempts] == [(1, 500), (2, 503), (3, 404), (4, 200)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.001 * d for gap, d in zip(gaps, (30, 90, 270), strict=True))
    assert len({d.body for d in receiver.posts()}) == 1  # the same delivery each time
    log = virtuous.control("GET", "deliveries")
    assert [(e["event"], e["attempt"], e["delivered"]) for e in log][-1] == ("GiftCreate", 4, True)


def test_direct_changes_fire_gift_update_gift_delete_and_contact_update(
    context: Context, hooked: tuple[Virtuous, Receiver, VirtuousWebhook]
) -> None:
    virtuous, receiver, source = hooked
    for events in (["GiftDelete"], ["ContactUpdate"]):
        _api_source(context, virtuous, events=events).subscribe(receiver.url)
    _gift_transaction(virtuous, "t-3")
    virtuous.import_now()
    gift = virtuous.state()["gifts"][0]
    auth = {"Authorization": f"Bearer {KEY}"}
    url = f"{virtuous.url}/api/Gift/{gift['id']}"
    assert httpx.put(url, json={"amount": 45, "notes": "corrected"}, headers=auth).is_success
    assert httpx.delete(url, headers=auth).is_success
    contact_url = f"{virtuous.url}/api/Contact/{gift['contactId']}"
    assert httpx.put(contact_url, json={"informalName": "Ada L"}, headers=auth).is_success
    assert receiver.wait_for(lambda posts: len(posts) == 4)
    events = [json.loads(d.body)["event"] for d in receiver.posts()]
    assert events == ["GiftCreate", "GiftUpdate", "GiftDelete", "ContactUpdate"]
    update = source.events(receiver.posts()[1])[0]
    assert (update.record["amount"], update.record["notes"]) == (45.0, "corrected")
    assert source.refetch(update) is None  # deleted since


def test_subscriptions_are_listed_and_removed(
    hooked: tuple[Virtuous, Receiver, VirtuousWebhook],
) -> None:
    virtuous, receiver, source = hooked
    [subscription] = source.subscriptions()
    assert (subscription.url, subscription.events) == (receiver.url, ["GiftCreate", "GiftUpdate"])
    source.unsubscribe(subscription.id)
    assert source.subscriptions() == []
    with pytest.raises(ConnectorError, match=f"no webhook {subscription.id}"):
        source.unsubscribe(subscription.id)
    _gift_transaction(virtuous, "t-4")
    virtuous.import_now()
    assert virtuous.app.state.emulator.deliverer.wait_idle(5)
    assert receiver.posts() == []
