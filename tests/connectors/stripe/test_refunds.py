"""``stripe.refunds``: full and partial refunds with their charge, incrementally; and a refund
created through the SDK, which exercises the POST path of the central client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.stripe.emulator.store import seed_charges
from connectors.stripe.refunds import RefundsSettings, RefundsSource
from connectors.stripe.service import stripe_client, stripe_errors
from core.context import Context
from core.http import RetryPolicy
from core.state import open_state
from tests.conftest import read_jsonl
from tests.connectors.stripe.conftest import JAN_2025, KEY, Emulator

DAY = 86_400


def context(tmp_path: Path) -> Context:
    return Context("refunds-test", tmp_path, open_state(tmp_path / "state.db"))


def read(emulator: Emulator, tmp_path: Path, **settings: Any) -> tuple[RefundsSource, list]:
    values = {"api_key": KEY, "base_url": emulator.url, "start": JAN_2025, **settings}
    src = RefundsSource(RefundsSettings.model_validate(values), context(tmp_path))
    try:
        return src, list(src.read(None))
    finally:
        src.context.close()


def test_full_and_partial_refunds_come_with_their_charge(emulator, tmp_path) -> None:
    usd, jpy = (
        seed_charges(emulator.store, 1, amount=5000)[0],
        seed_charges(emulator.store, 1, amount=1500, currency="jpy")[0],
    )
    store = emulator.store
    store.create_refund({"charge": usd["id"], "amount": 2000, "created": JAN_2025 + DAY})
    store.create_refund(
        {"charge": jpy["id"], "created": JAN_2025 + 2 * DAY, "reason": "requested_by_customer"}
    )
    store.create_refund({"charge": usd["id"], "created": JAN_2025 + 3 * DAY})
    _, records = read(emulator, tmp_path)
    assert [(r["amount"], r["currency"]) for r in records] == [
        (2000, "usd"),
        (1500, "jpy"),
        (3000, "usd"),
    ]
    assert [r["charge"]["id"] for r in records] == [usd["id"], jpy["id"], usd["id"]]
    assert [r["charge_id"] for r in records] == [usd["id"], jpy["id"], usd["id"]]
    assert records[0]["charge"]["amount"] == 5000
    assert records[1]["reason"] == "requested_by_customer"
    assert records[2]["charge"]["refunded"] is True  # the charge as it is now
    assert "expand[0]=data.charge" in emulator.lists("/v1/refunds")[0]["query"]


def test_pending_refunds_wait_and_hold_the_cursor(emulator, tmp_path) -> None:
    charges = seed_charges(emulator.store, 2, amount=1000)
    emulator.store.create_refund(
        {"charge": charges[0]["id"], "created": JAN_2025 + DAY, "status": "pending"}
    )
    emulator.store.create_refund({"charge": charges[1]["id"], "created": JAN_2025 + 2 * DAY})
    src, records = read(emulator, tmp_path)
    assert [r["status"] for r in records] == ["succeeded"]
    assert src.cursor_value(records[0]) == JAN_2025 + DAY
    _, everything = read(emulator, tmp_path, statuses=None)
    assert [r["status"] for r in everything] == ["pending", "succeeded"]


def test_a_refund_posted_through_the_sdk_is_retried_once_and_made_once(
    emulator, tmp_path, monkeypatch
) -> None:
    """Stripe's Idempotency-Key makes the POST safe to repeat, so the central client retries
    it through a 503; the emulator replays the first answer instead of refunding twice."""
    monkeypatch.setattr("connectors.stripe.service._RETRY", RetryPolicy(base_delay=0.01))
    (charge,) = seed_charges(emulator.store, 1, amount=4000)
    ctx = context(tmp_path)
    client = stripe_client(SecretStr(KEY), emulator.url, ctx)
    emulator.app.state.settings.faults.update(rate_limit_storm=1, storm_retry_after=0)
    try:
        with stripe_errors():
            refund = client.v1.refunds.create(params={"charge": charge["id"], "amount": 1500})
    finally:
        ctx.close()
    assert refund.amount == 1500
    assert [r["status"] for r in emulator.requests] == [429, 200]
    assert len(emulator.store.refunds) == 1
    assert emulator.store.charges[charge["id"]]["amount_refunded"] == 1500


REFUNDS_TO_JSONL = """
version: 1
name: stripe-refunds-to-jsonl
source:
  use: stripe.refunds
  with: {api_key: "${STRIPE_API_KEY}", base_url: "${STRIPE_BASE_URL}", start: 2025-01-01}
map:
  charge: record.charge.id
  refunded: record.amount | minor_to_major(record.currency)
  of: record.charge.amount | minor_to_major(record.charge.currency)
  partial: record.amount < record.charge.amount
sink:
  use: file.jsonl
  with: {path: out/refunds.jsonl}
tests:
  - input: {id: re_1, amount: 1, currency: usd, charge: {id: ch_1, amount: 2, currency: usd}}
    expect: {refunded: "0.01", partial: true}
"""


def test_new_refunds_arrive_on_the_next_run(emulator_env, write_recipe, invoke, tmp_path) -> None:
    (charge,) = seed_charges(emulator_env.store, 1, amount=9000)
    emulator_env.store.create_refund(
        {"charge": charge["id"], "amount": 4000, "created": JAN_2025 + DAY}
    )
    recipe = write_recipe(REFUNDS_TO_JSONL)
    first = json.loads(invoke("run", recipe, "--json").stdout)
    assert first["outcomes"]["written"] == 1
    emulator_env.store.create_refund({"charge": charge["id"], "created": JAN_2025 + 5 * DAY})
    second = json.loads(invoke("run", recipe, "--json").stdout)
    # The first refund is re-read (it sits at the cursor) and found unchanged.
    assert (second["outcomes"]["written"], second["outcomes"]["unchanged"]) == (1, 1)
    rows = read_jsonl(tmp_path / "out" / "refunds.jsonl")
    assert rows == [
        {"charge": charge["id"], "refunded": "40.00", "of": "90.00", "partial": True},
        {"charge": charge["id"], "refunded": "50.00", "of": "90.00", "partial": True},
    ]


def test_a_refund_that_breaks_the_contract_is_dead_lettered_naming_the_field(
    emulator_env, write_recipe, invoke, tmp_path
) -> None:
    charges = seed_charges(emulator_env.store, 3, amount=9000)
    refunds = [
        emulator_env.store.create_refund({"charge": c["id"], "created": JAN_2025 + DAY + i})
        for i, c in enumerate(charges)
    ]
    emulator_env.store.refunds[refunds[0]["id"]]["amount"] = "90.00"
    emulator_env.store.charges[charges[2]["id"]]["amount"] = 90.0  # the expanded charge's
    result = invoke("run", write_recipe(REFUNDS_TO_JSONL), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (1, 2)
    reasons = {p["key"]: p["reason"] for p in report["problems"]}
    assert "'amount'" in reasons[refunds[0]["id"]]
    assert "'charge.amount'" in reasons[refunds[2]["id"]]
    rows = read_jsonl(tmp_path / "out" / "refunds.jsonl")
    assert [r["charge"] for r in rows] == [charges[1]["id"]]
