"""``givebutter.webhook``: a secret in the URL, and every transaction read again from the API,
whatever the unsigned delivery said."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.givebutter.emulator.app import EmulatorSettings, GivebutterState, create_app
from connectors.givebutter.webhook import GivebutterWebhook, GivebutterWebhookSettings
from core.context import Context
from core.emulation import EmulatorServer
from core.errors import ConnectorError
from core.state import open_state
from core.webhooks import Delivery, MalformedDelivery, WebhookRejected
from tests.receiver import receiving

KEY = "gb-webhook-key-3c1d"
SECRET = "gb-url-secret-7a7e0b"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(create_app(EmulatorSettings(api_keys=[KEY]))) as running:
        yield running


@pytest.fixture
def givebutter(server: EmulatorServer) -> GivebutterState:
    state: GivebutterState = server.app.state.emulator  # type: ignore[attr-defined]
    state.reset()
    return state


def source(tmp_path: Path, url: str = "http://127.0.0.1:9", **settings: Any) -> GivebutterWebhook:
    context = Context("givebutter-webhook-test", tmp_path, open_state(tmp_path / "state.db"))
    values = {"secret": SECRET, "api_key": KEY, "base_url": url, **settings}
    return GivebutterWebhook(GivebutterWebhookSettings.model_validate(values), context)


def delivery(payload: Any, query: dict[str, str] | None = None) -> Delivery:
    body = json.dumps(payload).encode()
    return Delivery("POST", {}, {"secret": SECRET} if query is None else query, body, 0.0)


def announced(transaction: dict[str, Any], kind: str = "transaction.succeeded") -> dict[str, Any]:
    return {"id": "evt_1", "type": kind, "created_at": "2026-01-01T00:00:00Z", "data": transaction}


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ({}, r"without \?secret= in its URL"),
        ({"secret": "guessed"}, "wrong secret"),
        ({"secret": SECRET[:-1]}, "wrong secret"),
        ({"token": SECRET}, r"without \?secret="),
    ],
)
def test_a_delivery_without_the_urls_secret_is_refused(tmp_path, query, why) -> None:
    with pytest.raises(WebhookRejected, match=why) as refused:
        source(tmp_path).verify(delivery(announced({"id": "1"}), query))
    assert SECRET not in str(refused.value)


def test_the_secret_may_sit_under_another_name_and_must_be_set(tmp_path) -> None:
    source(tmp_path, query_parameter="token").verify(delivery({}, {"token": SECRET}))
    with pytest.raises(WebhookRejected, match="no secret"):
        source(tmp_path, secret="").verify(delivery({}, {"secret": ""}))


def test_what_a_delivery_says_is_never_written_only_what_the_api_says(
    tmp_path, givebutter: GivebutterState, server: EmulatorServer
) -> None:
    (made,) = givebutter.seed(count=1)
    givebutter.refund(made["id"])
    forged = {**made, "amount": 1_000_000, "transactions": [{"refunded": False}]}
    hook = source(tmp_path, server.url)
    (event,) = hook.events(delivery(announced(forged)))
    assert (event.type, event.key, event.id) == ("transaction.succeeded", made["id"], "evt_1")
    assert hook.selects(event)
    fresh = hook.refetch(event)
    assert fresh == givebutter.records[made["id"]]
    assert fresh["transactions"][0]["refunded"] is True
    (gone,) = hook.events(delivery(announced({"id": "no-such-transaction"})))
    assert hook.refetch(gone) is None
    hook.context.close()


def test_refetch_cannot_be_turned_off() -> None:
    with pytest.raises(ValidationError, match="refetch cannot be turned off"):
        GivebutterWebhookSettings.model_validate({"api_key": KEY, "refetch": False})
    assert GivebutterWebhookSettings.model_validate({"api_key": KEY}).refetch


def test_only_transaction_events_are_processed(tmp_path) -> None:
    hook = source(tmp_path)
    (plan,) = hook.events(delivery({"event": "plan.created", "data": {"id": 4}}))
    assert (plan.type, plan.key) == ("plan.created", "4")
    assert not hook.selects(plan)  # acknowledged and ignored
    (refund,) = hook.events(delivery(announced({"id": "9"}, "refund.created")))
    assert hook.selects(refund)
    with pytest.raises(
        ValidationError, match="unknown event 'plan.created'; choose from transaction.succeeded"
    ):
        GivebutterWebhookSettings.model_validate({"api_key": KEY, "events": ["plan.created"]})


@pytest.mark.parametrize("payload", [[], {"type": "transaction.succeeded"}, {"data": {"id": 1}}])
def test_a_delivery_without_an_event_and_an_id_is_malformed(tmp_path, payload) -> None:
    with pytest.raises(MalformedDelivery):
        source(tmp_path).events(delivery(payload))


# --- the emulator's deliveries ----------------------------------------------------------------


@pytest.fixture
def delivering() -> Iterator[EmulatorServer]:
    """An emulator whose retry schedule (1 min, 5 min, 30 min...) runs in milliseconds."""
    settings = EmulatorSettings(api_keys=[KEY], webhook_delay_scale=0.0002)
    with EmulatorServer(create_app(settings)) as running:
        yield running


def test_new_gifts_and_refunds_are_announced_and_read_back_from_the_api(
    tmp_path, delivering: EmulatorServer
) -> None:
    state: GivebutterState = delivering.app.state.emulator  # type: ignore[attr-defined]
    with receiving() as receiver:
        url = f"{receiver.url}?secret={SECRET}"
        hook = {"url": url, "events": ["transaction.succeeded", "refund.created"]}
        httpx.post(f"{delivering.url}/_emulator/webhooks", json=hook).raise_for_status()
        (made,) = state.seed_kinds("succeeded")
        state.seed_kinds("failed")  # announces nothing
        state.refund(made["id"])
        assert receiver.wait_for(lambda posts: len(posts) == 2)
        source_ = source(tmp_path, delivering.url)
        seen = []
        for sent in receiver.posts():
            source_.verify(sent)
            (event,) = source_.events(sent)
            fresh = source_.refetch(event)
            assert fresh is not None
            seen.append((event.type, event.key, fresh["transactions"][0]["refunded"]))
        assert sorted(seen) == [
            ("refund.created", made["id"], True),
            ("transaction.succeeded", made["id"], True),  # read now: already refunded
        ]
        source_.context.close()


def test_a_refused_delivery_is_retried_with_growing_delays(delivering: EmulatorServer) -> None:
    state: GivebutterState = delivering.app.state.emulator  # type: ignore[attr-defined]
    with receiving() as receiver:
        state.subscribers.add(f"{receiver.url}?secret={SECRET}")
        receiver.fail = [500, 429]
        state.seed_kinds("succeeded")
        assert state.subscribers.deliverer.wait_idle(10)
        attempts = httpx.get(f"{delivering.url}/_emulator/deliveries").json()
        assert [a["status"] for a in attempts] == [500, 429, 200]
        first, second, third = (a["at"] for a in attempts)
        assert second - first >= 0.012
        assert third - second >= 0.06


def test_a_webhook_registered_through_the_api_carries_the_secret_and_is_delivered_to(
    tmp_path, delivering: EmulatorServer
) -> None:
    state: GivebutterState = delivering.app.state.emulator  # type: ignore[attr-defined]
    with receiving() as receiver:
        hook = source(tmp_path, delivering.url)
        made = hook.subscribe(receiver.url)
        assert made.url == f"{receiver.url}?secret=***"  # never shown
        assert made.events == ["transaction.succeeded", "refund.created"]
        assert state.webhooks[made.id]["url"] == f"{receiver.url}?secret={SECRET}"
        assert [s.id for s in hook.subscriptions()] == [made.id]
        state.seed_kinds("succeeded")
        assert receiver.wait_for(lambda posts: len(posts) == 1)
        hook.verify(receiver.posts()[0])
        hook.unsubscribe(made.id)
        assert hook.subscriptions() == []
        with pytest.raises(ConnectorError, match=f"no webhook {made.id}"):
            hook.unsubscribe(made.id)
        with pytest.raises(ConnectorError, match="set with: secret:"):
            source(tmp_path, delivering.url, secret="").subscribe(receiver.url)
        hook.context.close()
