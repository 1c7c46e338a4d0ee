"""The routes of ``connector serve``: nothing unverified is stored, and every answer is counted."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import pytest

from tests.core.serve.conftest import Bench, recipe_text
from tests.core.serve.signed import HEADER, delivery, event, sign


def _stored(bench: Bench) -> int:
    return len(bench.store.inbox_events("hooks", ("pending", "failed", "done")))


def test_a_signed_delivery_is_committed_before_it_is_acknowledged(
    bench: Callable[..., Bench],
) -> None:
    served = bench()
    answer = served.post(event("g1", amount=5, event_id="evt_1"))
    assert answer.status_code == 200
    # The answer came after the commit: another connection sees the event at once.
    [stored] = served.store.inbox_events("hooks")
    assert (stored.key, stored.event_id, stored.record["amount"]) == ("g1", "evt_1", 5)


def test_missing_or_wrong_signatures_are_refused_with_401_and_nothing_is_stored(
    bench: Callable[..., Bench],
) -> None:
    served = bench()
    body, headers = delivery(event("g1", amount=5))
    unsigned = {k: v for k, v in headers.items() if k != HEADER}
    wrong_secret = {**headers, HEADER: sign(body, "not-the-secret")}
    tampered = body.replace(b'"amount": 5', b'"amount": 500')
    for content, sent in ((body, unsigned), (body, wrong_secret), (tampered, headers)):
        answer = served.client.post("/hooks/hooks", content=content, headers=sent)
        assert answer.status_code == 401
    assert _stored(served) == 0
    rejected = "connector_webhook_deliveries_rejected_total"
    assert served.metrics.value(rejected, "hooks", reason="signature") == 3


def test_a_signed_body_that_cannot_be_read_is_refused_with_400(
    bench: Callable[..., Bench],
) -> None:
    served = bench()
    body = b'{"events": [{"type": "GiftCreate"}]}'  # no record
    answer = served.client.post("/hooks/hooks", content=body, headers={HEADER: sign(body)})
    assert answer.status_code == 400
    assert "malformed delivery" in answer.text
    assert _stored(served) == 0


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_verified(
    bench: Callable[..., Bench],
) -> None:
    served = bench(recipe_text(source_extra=", max_body_bytes: 300"))
    big = event("g1", amount=5, note="x" * 400)
    assert served.post(big).status_code == 413
    # Announced or not, a body is read no further than the limit.
    body, headers = delivery(big)
    chunks = iter([body[:200], body[200:]])
    streamed = served.client.post("/hooks/hooks", content=chunks, headers={HEADER: headers[HEADER]})
    assert streamed.status_code == 413
    assert served.post(event("g2", amount=5)).status_code == 200
    assert _stored(served) == 1
    rejected = "connector_webhook_deliveries_rejected_total"
    assert served.metrics.value(rejected, "hooks", reason="too_large") == 2


def test_event_types_the_recipe_does_not_select_are_acknowledged_counted_and_not_kept(
    bench: Callable[..., Bench],
) -> None:
    served = bench(recipe_text(source_extra=", events: [GiftCreate]"))
    answer = served.post(
        event("c1", type="ContactCreate"), event("g1", amount=5), event("c2", type="Unknown")
    )
    assert answer.status_code == 200
    assert [e.key for e in served.store.inbox_events("hooks")] == ["g1"]
    assert served.metrics.value("connector_webhook_events_ignored_total", "hooks") == 2
    assert served.metrics.value("connector_webhook_events_received_total", "hooks") == 3


def test_metrics_count_by_recipe_and_show_the_inbox_depth(bench: Callable[..., Bench]) -> None:
    served = bench()
    served.post(event("g1", amount=5), event("g2", amount=6))
    served.client.post("/hooks/hooks", content=b"{}", headers={HEADER: "bad"})
    text = served.client.get("/metrics").text
    assert 'connector_webhook_events_received_total{recipe="hooks"} 2' in text
    assert (
        'connector_webhook_deliveries_rejected_total{recipe="hooks",reason="signature"} 1' in text
    )
    assert 'connector_inbox_events{recipe="hooks",status="pending"} 2' in text
    served.drain()
    text = served.client.get("/metrics").text
    assert 'connector_inbox_events{recipe="hooks",status="pending"} 0' in text
    assert 'connector_webhook_events_processed_total{recipe="hooks"} 2' in text
    assert 'connector_records_total{recipe="hooks",outcome="written"} 2' in text


def test_health_validation_get_and_unknown_routes(bench: Callable[..., Bench]) -> None:
    served = bench()
    assert json.loads(served.client.get("/healthz").text) == {"status": "ok", "recipes": ["hooks"]}
    # The test source checks a GET like a POST: signed (an empty body), then answered 200.
    assert served.client.get("/hooks/hooks").status_code == 401
    assert served.client.get("/hooks/hooks", headers={HEADER: sign(b"")}).status_code == 200
    missing = served.client.post("/hooks/nope", content=b"{}")
    assert missing.status_code == 404
    assert "/hooks/hooks" in missing.text
    assert served.client.put("/hooks/hooks", content=b"{}").status_code == 405


def test_metrics_show_the_requests_each_rate_budget_has_left_as_the_service_reported(
    bench: Callable[..., Bench],
) -> None:
    from core.http import store_for

    served = bench()
    now = time.time()
    store_for(served.store).observe("virtuous:1a2b3c", 4321, now + 600, 5000, now)
    text = served.client.get("/metrics").text
    assert 'connector_rate_budget_remaining{budget="virtuous:1a2b3c"} 4321' in text


SERVICE_RECIPE = """
version: 1
name: hooks
source:
  use: {use}
  with: {with_}
sink:
  use: file.jsonl
  with: {{path: out.jsonl}}
"""


def _stripe(secret: str, body: bytes, stamp: int) -> dict[str, str]:
    signed = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={stamp},v1={signed}"}


def _donorbox(secret: str, body: bytes, stamp: int) -> dict[str, str]:
    signed = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"donorbox-signature": f"{stamp},{signed}"}


@pytest.mark.parametrize(
    ("use", "with_", "sign"),
    [
        ("stripe.webhook", '{secret: "whsec_e2e", api_key: "sk_test_e2e"}', _stripe),
        ("donorbox.webhook", '{secret: "whsec_e2e"}', _donorbox),
    ],
)
def test_a_stale_or_replayed_signature_of_a_real_service_is_refused_and_nothing_is_stored(
    bench: Callable[..., Bench], use: str, with_: str, sign: Callable[..., dict[str, str]]
) -> None:
    served = bench(SERVICE_RECIPE.format(use=use, with_=with_).lstrip())
    body = json.dumps({"id": "evt_1", "type": "charge.succeeded", "data": {}}).encode()
    captured = sign("whsec_e2e", body, int(time.time()) - 3600)  # signed an hour ago
    forged = sign("whsec_other", body, int(time.time()))
    for headers in (captured, forged, {}):
        answer = served.client.post("/hooks/hooks", content=body, headers=headers)
        assert answer.status_code == 401
    assert _stored(served) == 0
    rejected = "connector_webhook_deliveries_rejected_total"
    assert served.metrics.value(rejected, "hooks", reason="signature") == 3
