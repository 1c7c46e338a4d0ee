"""``donorbox.webhook``: Donorbox-Signature over "<timestamp>.<body>", v1 payloads as
``donorbox.donations`` records, and refetch through the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.donorbox.emulator.app import DonorboxState, EmulatorSettings, create_app
from connectors.donorbox.emulator.shapes import rendered
from connectors.donorbox.webhook import DonorboxWebhook, DonorboxWebhookSettings, sign
from core.context import Context
from core.emulation import EmulatorServer
from core.state import open_state
from core.webhooks import Delivery, MalformedDelivery, WebhookRejected
from tests.receiver import receiving

SECRET = "dbx-signature-secret-5a4b8558"
EMAIL, KEY = "ops@example.org", "dbx-webhook-key-90"
NOW = 1_767_225_600


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(create_app(EmulatorSettings(credentials={EMAIL: KEY}))) as running:
        yield running


@pytest.fixture
def donorbox(server: EmulatorServer) -> DonorboxState:
    state: DonorboxState = server.app.state.emulator  # type: ignore[attr-defined]
    state.reset()
    return state


def source(tmp_path: Path, **settings: Any) -> DonorboxWebhook:
    context = Context("donorbox-webhook-test", tmp_path, open_state(tmp_path / "state.db"))
    values = {"secret": SECRET, **settings}
    return DonorboxWebhook(DonorboxWebhookSettings.model_validate(values), context)


def donation(state: DonorboxState, **changes: Any) -> dict[str, Any]:
    (made,) = state.seed(given=[changes])
    return {"action": "new", **rendered(made, "per_sample", "stays_paid")}


def delivery(body: bytes, header: str | None, received_at: float = NOW) -> Delivery:
    headers = {"donorbox-signature": header} if header is not None else {}
    return Delivery("POST", headers, {}, body, received_at)


def signed(body: bytes, secret: str = SECRET, at: int = NOW) -> str:
    return f"{at},{sign(secret, body, at)}"


def test_the_documented_example_computation_is_what_is_checked() -> None:
    """hex HMAC-SHA256 keyed by the secret over "<timestamp>.<raw body>" (webhooks.md)."""
    import hashlib
    import hmac

    body = b'[{"id": 1}]'
    expected = hmac.new(b"s3cret", b"1691135469." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, 1691135469) == expected


def test_a_signed_v1_delivery_becomes_the_donation_as_polling_reads_it(tmp_path, donorbox) -> None:
    sent = donation(donorbox, amount="40.0")
    body = json.dumps([sent]).encode()
    hook = source(tmp_path)
    hook.verify(delivery(body, signed(body)))
    (event,) = hook.events(delivery(body, signed(body)))
    assert (event.type, event.key) == ("donation.created", str(sent["id"]))
    assert event.record == sent
    assert hook.selects(event)


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("wrong secret", "does not match"),
        ("tampered body", "does not match"),
        ("stale timestamp", "over the tolerance of 300 s"),
        ("missing header", "without a Donorbox-Signature header"),
        ("garbled header", "is not '<timestamp>,<hex signature>'"),
        ("signature of another timestamp", "does not match"),
    ],
)
def test_a_delivery_that_does_not_check_out_is_refused(tmp_path, case: str, why: str) -> None:
    body = b'[{"id": 1, "action": "new"}]'
    stamp, mac = signed(body).split(",")
    sent = {
        "wrong secret": delivery(body, signed(body, "someone-else")),
        "tampered body": delivery(body.replace(b"1", b"2"), signed(body)),
        "stale timestamp": delivery(body, signed(body, at=NOW - 301)),
        "missing header": delivery(body, None),
        "garbled header": delivery(body, f"t={stamp},v1={mac}"),
        "signature of another timestamp": delivery(body, f"{NOW + 1},{mac}"),
    }[case]
    with pytest.raises(WebhookRejected, match=why) as refused:
        source(tmp_path).verify(sent)
    assert SECRET not in str(refused.value)


def test_a_replayed_delivery_is_refused_once_its_signature_is_too_old(tmp_path) -> None:
    body = b'[{"id": 1}]'
    captured = delivery(body, signed(body, at=NOW))
    source(tmp_path).verify(captured)
    replay = delivery(body, captured.headers["donorbox-signature"], NOW + 301)
    with pytest.raises(WebhookRejected, match="replay"):
        source(tmp_path).verify(replay)
    source(tmp_path, tolerance_seconds=600).verify(replay)
    with pytest.raises(WebhookRejected, match="no secret"):
        source(tmp_path, secret="").verify(captured)


@pytest.mark.parametrize("body", [b"{", b"[1]", b'[{"id": 1, "amount": 100}]'])
def test_a_signed_body_that_is_not_donations_is_malformed(tmp_path, body: bytes) -> None:
    with pytest.raises(MalformedDelivery):
        source(tmp_path).events(delivery(body, signed(body)))


def test_refetch_reads_the_donation_again_and_needs_the_api_credentials(
    tmp_path, donorbox, server: EmulatorServer
) -> None:
    sent = donation(donorbox, amount="40.0")
    donorbox.refund(sent["id"])
    with pytest.raises(ValidationError, match="set email and api_key"):
        DonorboxWebhookSettings.model_validate({"secret": SECRET, "refetch": True})
    hook = source(tmp_path, refetch=True, email=EMAIL, api_key=KEY, base_url=server.url)
    body = json.dumps([sent]).encode()
    (event,) = hook.events(delivery(body, signed(body)))
    fresh = hook.refetch(event)
    assert fresh is not None
    assert (fresh["id"], fresh["amount_refunded"]) == (sent["id"], "40.0")
    other = json.dumps([{**sent, "id": 999_999}]).encode()
    (gone,) = hook.events(delivery(other, None))
    assert hook.refetch(gone) is None
    hook.context.close()


def test_only_donation_events_can_be_selected() -> None:
    with pytest.raises(
        ValidationError,
        match="unknown event 'plan.created'; choose from donation.created, donation.updated",
    ):
        DonorboxWebhookSettings.model_validate({"events": ["plan.created"]})


# --- the emulator's deliveries ----------------------------------------------------------------


@pytest.fixture
def delivering() -> Iterator[EmulatorServer]:
    """An emulator whose retry schedule runs in milliseconds (0.01 s, 0.06 s, 0.3 s...)."""
    settings = EmulatorSettings(credentials={EMAIL: KEY}, webhook_delay_scale=0.001)
    with EmulatorServer(create_app(settings)) as running:
        yield running


def test_each_new_donation_is_delivered_signed_to_the_dashboards_webhooks(
    tmp_path, delivering: EmulatorServer
) -> None:
    state: DonorboxState = delivering.app.state.emulator  # type: ignore[attr-defined]
    with receiving() as receiver:
        hook = {"url": receiver.url, "events": ["donation.created"], "secret": SECRET}
        httpx.post(f"{delivering.url}/_emulator/webhooks", json=hook).raise_for_status()
        made = state.seed(count=2)
        assert receiver.wait_for(lambda posts: len(posts) == 2)
        source_ = source(tmp_path)
        keys = []
        for sent in receiver.posts():
            source_.verify(sent)
            (event,) = source_.events(sent)
            assert event.type == "donation.created"
            assert event.record["action"] == "new"
            keys.append(event.key)
        assert sorted(keys) == sorted(str(d["id"]) for d in made)


def test_a_refused_delivery_is_retried_with_growing_delays(
    tmp_path, delivering: EmulatorServer
) -> None:
    state: DonorboxState = delivering.app.state.emulator  # type: ignore[attr-defined]
    with receiving() as receiver:
        state.subscribers.add(receiver.url, ["donation.created"], SECRET)
        receiver.fail = [503, 500]
        state.seed(count=1)
        assert state.subscribers.deliverer.wait_idle(10)
        attempts = httpx.get(f"{delivering.url}/_emulator/deliveries").json()
        assert [a["status"] for a in attempts] == [503, 500, 200]
        first, second, third = (a["at"] for a in attempts)
        assert second - first >= 0.01
        assert third - second >= 0.06
        for sent in receiver.posts():
            source(tmp_path).verify(sent)  # signed anew at each attempt
