"""``stripe.webhook``: Stripe-Signature checked with the SDK, events as ``stripe.charges`` records,
refetch and refunds read through the emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from pydantic import ValidationError

from connectors.stripe.charges import ChargesSettings, ChargesSource
from connectors.stripe.emulator.app import EmulatorSettings, create_app
from connectors.stripe.webhook import CHARGE_EVENTS, StripeWebhook, StripeWebhookSettings
from core.context import Context
from core.emulation import EmulatorServer
from core.recipe import load_recipe
from core.registry import Registry
from core.state import open_state
from core.webhooks import Delivery, MalformedDelivery, WebhookRejected
from tests.connectors.stripe.conftest import JAN_2025, KEY, Emulator
from tests.receiver import receiving

SECRET = "whsec_test_9f8e7d6c5b4a"
RECIPES = Path(__file__).resolve().parents[3] / "recipes"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def source(tmp_path: Path, **settings: Any) -> StripeWebhook:
    values = {"secret": SECRET, "api_key": KEY, **settings}
    context = Context("stripe-webhook-test", tmp_path, open_state(tmp_path / "state.db"))
    return StripeWebhook(StripeWebhookSettings.model_validate(values), context)


def event_body(charge: dict[str, Any], kind: str = "charge.succeeded") -> bytes:
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": stripe.api_version,
        "created": charge.get("created", JAN_2025),
        "data": {"object": charge},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
    return json.dumps(event).encode()


def delivery(body: bytes, header: str | None, received_at: float = NOW, **headers: str) -> Delivery:
    sent = {**headers, **({"stripe-signature": header} if header is not None else {})}
    return Delivery("POST", sent, {}, body, received_at)


def signed(body: bytes, secret: str = SECRET, at: float = NOW) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(at)
    )
    return header


CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "amount": 2500,
    "amount_refunded": 0,
    "currency": "usd",
    "created": JAN_2025,
    "status": "succeeded",
    "captured": True,
    "refunded": False,
    "customer": "cus_1",
    "balance_transaction": "txn_1",
    "metadata": {},
    "billing_details": {"name": "Ada Lovelace", "email": "ada@example.org"},
}


def test_a_signed_event_becomes_the_charge_as_the_polling_source_shapes_it(tmp_path) -> None:
    hook, body = source(tmp_path), event_body(CHARGE)
    hook.verify(delivery(body, signed(body)))
    (event,) = hook.events(delivery(body, signed(body)))
    assert (event.type, event.key, event.id) == ("charge.succeeded", "ch_1", "evt_1")
    assert event.occurred_at == "2025-01-01T00:00:00Z"
    assert event.record["amount"] == 2500
    assert event.record["customer_id"] == "cus_1"
    assert event.record["fee"] is None  # not expanded in an event: refetch reads it
    assert hook.selects(event)


def test_every_v1_signature_is_tried_so_a_rotated_secret_keeps_working(tmp_path) -> None:
    body = event_body(CHARGE)
    old, new = "whsec_old_0123456789", "whsec_new_9876543210"
    header = signed(body, old) + "," + signed(body, new).split(",")[1] + ",v0=ignored"
    for secret in (old, new):
        source(tmp_path, secret=secret).verify(delivery(body, header))
    with pytest.raises(WebhookRejected, match="No signatures found matching"):
        source(tmp_path, secret="whsec_neither").verify(delivery(body, header))


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("wrong secret", "No signatures found matching"),
        ("tampered body", "No signatures found matching"),
        ("stale timestamp", "301 s old, over the tolerance of 300 s"),
        ("missing header", "without a Stripe-Signature header"),
        ("no v1 signature", "No signatures found with expected scheme v1"),
        ("garbled header", "Unable to extract timestamp"),
        ("not UTF-8", "not UTF-8"),
    ],
)
def test_a_delivery_that_does_not_check_out_is_refused(tmp_path, case: str, why: str) -> None:
    body = event_body(CHARGE)
    header = signed(body)
    sent = {
        "wrong secret": delivery(body, signed(body, "whsec_someone_else")),
        "tampered body": delivery(body.replace(b"2500", b"250000"), header),
        "stale timestamp": delivery(body, signed(body, at=NOW - 301)),
        "missing header": delivery(body, None),
        "no v1 signature": delivery(body, header.replace("v1=", "v0=")),
        "garbled header": delivery(body, "signature please"),
        "not UTF-8": delivery(b"\xff\xfe", signed(body)),
    }[case]
    with pytest.raises(WebhookRejected, match=why) as refused:
        source(tmp_path).verify(sent)
    assert SECRET not in str(refused.value)


def test_a_replayed_delivery_is_refused_once_its_signature_is_too_old(tmp_path) -> None:
    body = event_body(CHARGE)
    captured = delivery(body, signed(body, at=NOW - 10))
    source(tmp_path).verify(captured)
    replay = delivery(captured.body, captured.headers["stripe-signature"], NOW + 600)
    with pytest.raises(WebhookRejected, match="replay"):
        source(tmp_path).verify(replay)
    # The tolerance is configurable (0: none), and a signature from the future is not stale.
    source(tmp_path, tolerance_seconds=900).verify(replay)
    source(tmp_path, tolerance_seconds=0).verify(replay)
    source(tmp_path).verify(delivery(body, signed(body, at=NOW + 30)))


def test_without_a_secret_every_delivery_is_refused(tmp_path) -> None:
    body = event_body(CHARGE)
    with pytest.raises(WebhookRejected, match="no secret"):
        source(tmp_path, secret="").verify(delivery(body, signed(body)))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"object": "charge", "id": "ch_1"}).encode()],
)
def test_a_signed_body_that_is_not_an_event_is_malformed(tmp_path, body: bytes) -> None:
    hook = source(tmp_path)
    hook.verify(delivery(body, signed(body)))
    with pytest.raises(MalformedDelivery):
        hook.events(delivery(body, signed(body)))


def test_a_charge_that_breaks_stripes_contract_is_malformed(tmp_path) -> None:
    body = event_body({**CHARGE, "amount": "2500"})
    with pytest.raises(MalformedDelivery, match="'amount'"):
        source(tmp_path).events(delivery(body, signed(body)))


def test_only_charge_events_are_accepted_in_events(tmp_path) -> None:
    with pytest.raises(
        ValidationError, match="unknown event 'customer.created'; choose from charge.succeeded"
    ):
        StripeWebhookSettings.model_validate({"api_key": KEY, "events": ["customer.created"]})
    with pytest.raises(ValidationError, match="set refetch: true"):
        StripeWebhookSettings.model_validate({"api_key": KEY, "events": ["charge.refund.updated"]})
    with pytest.raises(ValidationError, match="publishable key"):
        StripeWebhookSettings.model_validate({"api_key": "pk_test_1"})
    hook = source(tmp_path, events=["charge.succeeded"])
    other = event_body({"id": "cus_1", "object": "customer"}, "customer.created")
    (event,) = hook.events(delivery(other, signed(other)))
    assert not hook.selects(event)  # acknowledged, not processed
    refunded = event_body({**CHARGE, "refunded": True}, "charge.refunded")
    (event,) = hook.events(delivery(refunded, signed(refunded)))
    assert not hook.selects(event)


def test_refetch_reads_the_charge_with_fee_and_customer_as_the_polling_source_does(
    emulator: Emulator, tmp_path: Path, registry: Registry
) -> None:
    made = emulator.store.seed_charge(
        {"amount": 5000, "created": JAN_2025, "customer": {"name": "Ada", "email": "a@x.org"}}
    )
    hook = source(tmp_path, base_url=emulator.url, refetch=True)
    body = event_body(emulator.store.view(made, []))
    (event,) = hook.events(delivery(body, signed(body)))
    fresh = hook.refetch(event)
    assert fresh is not None
    assert (fresh["fee"], fresh["customer_email"]) == (175, "a@x.org")
    polled = ChargesSource(
        ChargesSettings.model_validate(
            {"api_key": KEY, "base_url": emulator.url, "start": JAN_2025, "expand_customer": True}
        ),
        hook.context,
    )
    (record,) = list(polled.read(None))
    assert fresh == record
    # So the webhook recipe maps it exactly as the polling recipe does: one ledger entry.
    env = {"STRIPE_API_KEY": KEY, "VIRTUOUS_API_KEY": "v", "STRIPE_WEBHOOK_SECRET": SECRET}
    webhook_recipe = load_recipe(RECIPES / "stripe-webhooks-to-virtuous-gifts.yaml", registry, env)
    polling_recipe = load_recipe(RECIPES / "stripe-charges-to-virtuous-gifts.yaml", registry, env)
    assert webhook_recipe.apply(fresh) == polling_recipe.apply(record)
    hook.context.close()


def test_a_refund_event_is_processed_as_its_charge_only_when_refetched(
    emulator: Emulator, tmp_path: Path
) -> None:
    charge = emulator.store.seed_charge({"amount": 4000, "created": JAN_2025})
    refund = emulator.store.create_refund({"charge": charge["id"], "amount": 1000})
    body = event_body(refund, "charge.refund.updated")
    plain = source(tmp_path, base_url=emulator.url)
    (event,) = plain.events(delivery(body, signed(body)))
    assert event.key == charge["id"]
    assert not plain.selects(event)
    hook = source(tmp_path, base_url=emulator.url, refetch=True)
    assert hook.selects(event)
    fresh = hook.refetch(event)
    assert fresh is not None
    assert (fresh["id"], fresh["amount_refunded"]) == (charge["id"], 1000)
    gone = plain.events(delivery(event_body({**CHARGE, "id": "ch_gone"}), None))[0]
    assert hook.refetch(gone) is None
    hook.context.close()


def test_verification_does_not_wait_on_the_clock(tmp_path) -> None:
    """The age is measured from when the delivery arrived, not from when it is checked."""
    body = event_body(CHARGE)
    long_ago = time.time() - 86_400
    source(tmp_path).verify(delivery(body, signed(body, at=long_ago), long_ago + 5))


# --- the emulator's webhook endpoints and deliveries ------------------------------------------


@pytest.fixture
def delivering() -> Iterator[Emulator]:
    """An emulator that waits 0.06 s, 0.36 s and 1.08 s before its retries (Stripe's test-mode
    schedule, scaled down)."""
    app = create_app(EmulatorSettings(api_keys=[KEY], webhook_delay_scale=0.0001))
    with EmulatorServer(app) as server:
        yield Emulator(server)


def test_an_endpoint_registered_through_the_source_receives_signed_charge_events(
    delivering: Emulator, tmp_path: Path
) -> None:
    with receiving() as receiver:
        manager = source(tmp_path, secret="", base_url=delivering.url)
        made = manager.subscribe(receiver.url)
        assert made.secret is not None
        assert made.secret.startswith("whsec_")
        assert made.events == [e for e in CHARGE_EVENTS if e != "charge.refund.updated"]
        assert [s.id for s in manager.subscriptions()] == [made.id]
        assert manager.subscriptions()[0].secret is None  # Stripe shows it once
        charge = delivering.store.seed_charge({"amount": 1200, "created": JAN_2025})
        assert receiver.wait_for(lambda posts: len(posts) == 1)
        hook = source(tmp_path, secret=made.secret, base_url=delivering.url)
        (sent,) = receiver.posts()
        hook.verify(sent)
        (event,) = hook.events(sent)
        assert (event.type, event.key) == ("charge.succeeded", charge["id"])
        manager.unsubscribe(made.id)
        assert manager.subscriptions() == []
        delivering.store.seed_charge({"amount": 1300, "created": JAN_2025})
        assert not receiver.wait_for(lambda posts: len(posts) > 1, timeout=0.3)
    manager.context.close()


def test_a_refused_delivery_is_retried_later_each_time_and_signed_anew(
    delivering: Emulator, tmp_path: Path
) -> None:
    with receiving() as receiver:
        manager = source(tmp_path, base_url=delivering.url)
        made = manager.subscribe(receiver.url)
        receiver.fail = [500, 401]
        delivering.store.seed_charge({"amount": 1200, "created": JAN_2025})
        deliverer = delivering.store.deliverer
        assert deliverer is not None
        assert deliverer.wait_idle(10)
        attempts = deliverer.attempts()
        assert [a.status for a in attempts] == [500, 401, 200]
        assert attempts[1].at - attempts[0].at >= 0.06
        assert attempts[2].at - attempts[1].at >= 0.36  # growing delays
        hook = source(tmp_path, secret=made.secret, base_url=delivering.url)
        for sent in receiver.posts():
            hook.verify(sent)
    manager.context.close()


def test_a_refund_that_fails_is_announced_and_read_back_as_its_charge(
    delivering: Emulator, tmp_path: Path
) -> None:
    """A pending refund that the bank refuses gives the money back to the charge: the
    charge.refund.updated event holds the refund, refetch reads the charge as it is now."""
    with receiving() as receiver:
        manager = source(tmp_path, base_url=delivering.url, refetch=True)
        made = manager.subscribe(receiver.url)
        manager.context.close()
        assert "charge.refund.updated" in made.events
        charge = delivering.store.seed_charge(
            {"amount": 3000, "created": JAN_2025, "refunds": [{"status": "pending"}]}
        )
        (refund,) = delivering.store.refunds.values()
        assert delivering.store.charges[charge["id"]]["refunded"] is True
        delivering.store.settle_refund(refund["id"], "failed")
        assert receiver.wait_for(lambda posts: len(posts) == 3)  # succeeded, refunded, updated
        updated = [p for p in receiver.posts() if b'"charge.refund.updated"' in p.body]
        hook = source(tmp_path, secret=made.secret, base_url=delivering.url, refetch=True)
        hook.verify(updated[0])
        (event,) = hook.events(updated[0])
        assert (event.key, event.record["object"]) == (charge["id"], "refund")
        assert hook.selects(event)
        fresh = hook.refetch(event)
        assert fresh is not None
        assert (fresh["refunded"], fresh["amount_refunded"]) == (False, 0)
    hook.context.close()
