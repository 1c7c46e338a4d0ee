"""What the emulated Donorbox organization holds: its settings (the switches) and its donations."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field

from connectors.donorbox.emulator.faults import ErrorDialect
from connectors.donorbox.emulator.shapes import (
    KeySet,
    RefundStatus,
    fake_donation,
    formatted,
    money,
    rendered,
    stamp,
)
from core.emulation import WebhookDeliverer, hmac_sha256, json_default
from core.emulation.records import Faker, Record, RecordId, RecordsSettings, RecordsState
from core.emulation.subscribers import Subscriber, Subscribers
from core.emulation.webhooks import DEFAULT_DELAYS


class EmulatorSettings(RecordsSettings):
    """The organization's API keys, and a switch for each thing Donorbox does not document."""

    credentials: dict[str, str] = Field(
        default_factory=lambda: {"ops@example.org": "emulator-donorbox-key"},
        description="login email -> API key",
    )
    keys: KeySet = Field(default="per_sample", description="which documented keys show")
    refund_status: RefundStatus = Field(
        default="stays_paid", description="the status a refunded donation shows"
    )
    errors: ErrorDialect = Field(default="json", description="the body of a 429 or 5xx")
    # Donorbox does not publish whether or when it retries a failed delivery: a growing schedule.
    webhook_retry_delays: tuple[float, ...] = DEFAULT_DELAYS
    webhook_delay_scale: float = Field(default=1.0, ge=0)  # tests run the schedule in ms
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)


@dataclass
class DonorboxState(RecordsState[EmulatorSettings]):
    """Everything the emulated organization holds; tests may use it directly.

    Each donation seeded is a new donation: it is delivered to the custom webhooks that want
    ``donation.created`` (:attr:`subscribers`, added through ``POST /_emulator/webhooks`` as in
    the dashboard) as a v1 payload, a one-donation array with ``"action": "new"``, signed with
    ``Donorbox-Signature: <unix time>,<hex HMAC-SHA256 of "<time>.<body>">``.
    """

    collection = "donations"
    int_ids = True
    default_seed = 11

    subscribers: Subscribers = field(init=False)

    def __post_init__(self) -> None:
        deliverer = WebhookDeliverer(
            "Donorbox",
            delays=self.settings.webhook_retry_delays,
            scale=self.settings.webhook_delay_scale,
            timeout=self.settings.webhook_timeout_seconds,
        )
        self.subscribers = Subscribers(deliverer, sign=_signature)

    def seed(
        self, count: int = 0, given: list[Record] | None = None, seed: int | None = None
    ) -> list[Record]:
        made = super().seed(count, given, seed)
        for donation in made:
            shown = rendered(donation, self.settings.keys, self.settings.refund_status)
            body = json.dumps([{"action": "new", **shown}], default=json_default).encode()
            self.subscribers.announce("donation.created", body, _HEADERS)
        return made

    def reset(self) -> None:
        super().reset()
        self.subscribers.clear()

    def faker(self, total: int) -> Faker:
        """One paid donation a day, up to yesterday."""
        start = self.now() - timedelta(days=total + 1)

        def fake(rng: random.Random, index: int, number: int) -> Record:
            return fake_donation(
                rng, number, start + timedelta(days=index, hours=rng.randint(0, 12))
            )

        return fake

    def refund(self, record_id: RecordId, amount: Decimal | str | None = None) -> Record:
        """Give ``amount`` back (all that is left when ``None``), as the dashboard's refund does:
        ``amount_refunded`` grows; what the status shows is up to ``refund_status``."""
        donation = self.records[record_id]
        paid = Decimal(str(donation["amount"]))
        before = Decimal(str(donation["amount_refunded"]))
        total = min(paid, before + Decimal(str(amount))) if amount is not None else paid
        return self.update(
            record_id,
            {"amount_refunded": money(total), "formatted_amount_refunded": formatted(total)},
        )

    def seed_every_state(self) -> dict[str, Record]:
        """A donation in each state the connector must tell apart, by name, a day apart: paid by
        card and through PayPal, the first and a later payment of a recurring plan, refunded in
        full, partially refunded, and refunded through PayPal."""
        card, paypal = {"donation_type": "stripe"}, {"donation_type": "paypal"}
        plan = {**card, "recurring": True}
        shapes: dict[str, dict[str, Any]] = {
            "paid_stripe": card,
            "paid_paypal": paypal,
            "recurring_first": {**plan, "first_recurring_donation": True},
            "recurring_next": {**plan, "first_recurring_donation": False},
            "refunded": card,
            "partially_refunded": card,
            "refunded_paypal": paypal,
        }
        day = self.now() - timedelta(days=len(shapes) + 1)
        made: dict[str, Record] = {}
        for offset, (name, shape) in enumerate(shapes.items()):
            when = {"donation_date": stamp(day + timedelta(days=offset))}
            paid_by = _paid_by(shape, f"{name}_{len(self.records) + 1}")
            made[name] = self.seed(given=[{**shape, **when, **paid_by}])[0]
        self.refund(made["refunded"]["id"])
        partly = made["partially_refunded"]
        self.refund(partly["id"], Decimal(partly["amount"]) / 2)
        self.refund(made["refunded_paypal"]["id"])
        return made


_HEADERS = {"Content-Type": "application/json", "User-Agent": "Donorbox-Webhooks"}


def _signature(subscriber: Subscriber, body: bytes) -> dict[str, str]:
    """``Donorbox-Signature`` at the time of this attempt (no header without a secret)."""
    if not subscriber.secret:
        return {}
    stamp = int(time.time())
    mac = hmac_sha256(subscriber.secret, f"{stamp}.".encode() + body)
    return {"Donorbox-Signature": f"{stamp},{mac}"}


def _paid_by(shape: dict[str, Any], tag: str) -> Record:
    """The payment ids that agree with the donation type a scenario asked for."""
    if shape["donation_type"] == "stripe":
        return {"stripe_charge_id": f"ch_{tag}", "paypal_transaction_id": None}
    return {"stripe_charge_id": None, "paypal_transaction_id": f"PAYPAL-{tag}".upper()}
