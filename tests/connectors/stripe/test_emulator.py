"""The Stripe emulator behaves like Stripe where a sync can tell: lists, filters, expansion,
errors, keys, refunds; and the real SDK (with its own HTTP client) works against it."""

from __future__ import annotations

import base64

import httpx
import pytest
import stripe as stripe_sdk

from connectors.stripe.emulator.app import mask_key, parse_params
from connectors.stripe.emulator.store import default_fee, seed_charges
from tests.connectors.stripe.conftest import JAN_2025, KEY, Emulator

AUTH = {"Authorization": f"Bearer {KEY}"}


def get(emulator: Emulator, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{emulator.url}{path}", params=params, headers=AUTH)  # type: ignore[arg-type]


def test_bracket_params_parse_like_stripe_sends_them() -> None:
    pairs = [
        ("created[gte]", "5"),
        ("expand[0]", "data.customer"),
        ("expand[1]", "data.x"),
        ("limit", "3"),
        ("metadata[fund]", "general"),
        ("types[]", "charge.succeeded"),
        ("items[0][price]", "p1"),
        ("items[0][qty]", "2"),
        ("items[1][price]", "p2"),
    ]
    assert parse_params(pairs) == {
        "created": {"gte": "5"},
        "expand": ["data.customer", "data.x"],
        "limit": "3",
        "metadata": {"fund": "general"},
        "types": ["charge.succeeded"],
        "items": [{"price": "p1", "qty": "2"}, {"price": "p2"}],
    }


def test_lists_are_newest_first_in_stripes_envelope(emulator: Emulator) -> None:
    seed_charges(emulator.store, 5)
    body = get(emulator, "/v1/charges", limit=2).json()
    assert body["object"] == "list"
    assert body["url"] == "/v1/charges"
    assert body["has_more"] is True
    assert [c["created"] for c in body["data"]] == [JAN_2025 + 4 * 3600, JAN_2025 + 3 * 3600]
    charge = body["data"][0]
    assert charge["object"] == "charge"
    assert charge["currency"] == "usd"
    assert charge["balance_transaction"].startswith("txn_")
    assert charge["customer"].startswith("cus_")
    assert charge["billing_details"]["address"]["city"] == "Phoenix"


def test_paging_forwards_and_backwards(emulator: Emulator) -> None:
    ids = [c["id"] for c in reversed(seed_charges(emulator.store, 5))]  # newest first
    second = get(emulator, "/v1/charges", limit=2, starting_after=ids[1]).json()
    assert [c["id"] for c in second["data"]] == ids[2:4]
    assert second["has_more"] is True
    last = get(emulator, "/v1/charges", limit=2, starting_after=ids[3]).json()
    assert [c["id"] for c in last["data"]] == ids[4:]
    assert last["has_more"] is False
    newer = get(emulator, "/v1/charges", limit=2, ending_before=ids[4]).json()
    assert [c["id"] for c in newer["data"]] == ids[2:4]
    assert newer["has_more"] is True
    # The cursor is a position: it need not match the filter itself.
    filtered = {"starting_after": ids[0], "created[lt]": JAN_2025 + 3 * 3600}
    assert [c["id"] for c in get(emulator, "/v1/charges", **filtered).json()["data"]] == ids[2:]
    unknown = get(emulator, "/v1/charges", starting_after="ch_gone")
    assert unknown.json()["error"]["param"] == "starting_after"


def test_created_filters(emulator: Emulator) -> None:
    seed_charges(emulator.store, 5, spacing=10)
    params = {"created[gt]": JAN_2025 + 10, "created[lte]": JAN_2025 + 40}
    body = get(emulator, "/v1/charges", **params).json()
    assert sorted(c["created"] - JAN_2025 for c in body["data"]) == [20, 30, 40]
    exact = get(emulator, "/v1/charges", created=JAN_2025).json()
    assert [c["created"] for c in exact["data"]] == [JAN_2025]


def test_expand_replaces_ids_with_objects(emulator: Emulator) -> None:
    seed_charges(emulator.store, 1, amount=10_000)
    params = {"expand[0]": "data.balance_transaction", "expand[1]": "data.customer"}
    charge = get(emulator, "/v1/charges", **params).json()["data"][0]
    txn = charge["balance_transaction"]
    assert txn["object"] == "balance_transaction"
    assert txn["fee"] == default_fee(10_000, "usd") == 320
    assert txn["net"] == 10_000 - 320
    assert charge["customer"]["email"] == "ada.lovelace@example.org"
    retrieved = get(emulator, f"/v1/charges/{charge['id']}", **{"expand[]": "customer"}).json()
    assert retrieved["customer"]["name"] == "Ada Lovelace"
    assert isinstance(retrieved["balance_transaction"], str)
    (customer,) = get(emulator, "/v1/customers", email="ada.lovelace@example.org").json()["data"]
    assert customer == get(emulator, f"/v1/customers/{customer['id']}").json()
    assert customer["object"] == "customer"


def test_bad_requests_use_stripes_error_envelope(emulator: Emulator) -> None:
    seed_charges(emulator.store, 1)
    response = get(emulator, "/v1/charges", limit=101)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "This value must be less than or equal to 100.",
        "code": "parameter_invalid_integer",
        "param": "limit",
    }
    response = get(emulator, "/v1/charges", **{"expand[]": "balance_transaction"})
    assert response.status_code == 400
    assert "cannot be expanded" in response.json()["error"]["message"]
    response = get(emulator, "/v1/charges/ch_nope")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such charge: 'ch_nope'"
    assert response.json()["error"]["code"] == "resource_missing"
    response = get(emulator, "/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET: ")


def test_keys_are_checked_and_masked_in_the_error(emulator: Emulator) -> None:
    missing = httpx.get(f"{emulator.url}/v1/charges")
    assert missing.status_code == 401
    assert "did not provide an API key" in missing.json()["error"]["message"]
    wrong = "sk_test_wrongwrongwrong1234"
    refused = httpx.get(f"{emulator.url}/v1/charges", headers={"Authorization": f"Bearer {wrong}"})
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error == {
        "type": "invalid_request_error",
        "message": "Invalid API Key provided: sk_test_****1234",
    }
    assert refused.headers["Request-Id"].startswith("req_")
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    accepted = httpx.get(f"{emulator.url}/v1/charges", headers={"Authorization": f"Basic {basic}"})
    assert accepted.status_code == 200
    assert mask_key("rk_live_abcdefghijkl9876") == "rk_live_****9876"
    assert mask_key("short") == "****"


def test_refunds_update_the_charge_and_are_idempotent(emulator: Emulator) -> None:
    (charge,) = seed_charges(emulator.store, 1, amount=5000)
    url = f"{emulator.url}/v1/refunds"
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    form = {"charge": charge["id"], "amount": "2000", "expand[]": "charge"}
    first = httpx.post(url, data=form, headers=headers)
    assert first.status_code == 200
    refund = first.json()
    assert (refund["object"], refund["amount"], refund["status"]) == ("refund", 2000, "succeeded")
    assert refund["charge"]["amount_refunded"] == 2000
    assert refund["charge"]["refunded"] is False
    replay = httpx.post(url, data=form, headers=headers)
    assert replay.json()["id"] == refund["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    too_much = httpx.post(url, data={"charge": charge["id"], "amount": "3001"}, headers=AUTH)
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "amount_too_large"
    rest = httpx.post(url, data={"charge": charge["id"]}, headers=AUTH).json()
    assert rest["amount"] == 3000
    assert emulator.store.charges[charge["id"]]["refunded"] is True
    again = httpx.post(url, data={"charge": charge["id"]}, headers=AUTH)
    assert again.json()["error"]["code"] == "charge_already_refunded"
    listed = get(emulator, "/v1/refunds", charge=charge["id"]).json()["data"]
    assert [r["amount"] for r in listed] == [3000, 2000]
    txn = get(emulator, f"/v1/balance_transactions/{rest['balance_transaction']}").json()
    assert (txn["type"], txn["amount"], txn["fee"]) == ("refund", -3000, 0)


def test_events_follow_what_happened(emulator: Emulator) -> None:
    (charge,) = seed_charges(emulator.store, 1)
    emulator.store.create_refund({"charge": charge["id"], "amount": 100})
    events = get(emulator, "/v1/events", type="charge.*").json()["data"]
    assert [e["type"] for e in events] == ["charge.refunded", "charge.succeeded"]
    assert events[0]["data"]["previous_attributes"] == {"amount_refunded": 0, "refunded": False}
    assert events[0]["data"]["object"]["amount_refunded"] == 100


def test_control_plane_seeds_reports_faults_and_resets(emulator: Emulator) -> None:
    control = f"{emulator.url}/_emulator"
    made = httpx.post(
        f"{control}/seed",
        json={
            "api_keys": ["sk_test_second_key_0000"],
            "charges": [
                {
                    "amount": 700,
                    "currency": "JPY",
                    "created": JAN_2025,
                    "fee": 25,
                    "customer": {"name": "Grace Hopper", "email": "grace@example.org"},
                    "metadata": {"designation": "missions"},
                    "refunds": [{"amount": 200}],
                }
            ],
        },
    ).json()
    state = httpx.get(f"{control}/state").json()
    (charge,) = state["charges"]
    assert charge["id"] == made["charges"][0]
    assert (charge["currency"], charge["amount_refunded"]) == ("jpy", 200)
    assert charge["metadata"] == {"designation": "missions"}
    assert state["customers"][0]["email"] == "grace@example.org"
    assert [t["fee"] for t in state["balance_transactions"]] == [25, 0]
    second = {"Authorization": "Bearer sk_test_second_key_0000"}
    assert httpx.get(f"{emulator.url}/v1/charges", headers=second).status_code == 200
    httpx.post(f"{control}/faults", json={"error_rate": 1.0, "error_statuses": [503]})
    assert get(emulator, "/v1/charges").status_code == 503
    assert [r["status"] for r in httpx.get(f"{control}/state").json()["requests"]][-1] == 503
    httpx.post(f"{control}/reset")
    state = httpx.get(f"{control}/state").json()
    assert state["charges"] == state["requests"] == []
    assert get(emulator, "/v1/charges").status_code == 200


@pytest.mark.parametrize("direction", ["starting_after", "ending_before"])
def test_the_sdks_own_paging_works_against_it(emulator: Emulator, direction: str) -> None:
    """The SDK with its default HTTP client: the emulator, not our wiring, is under test."""
    made = seed_charges(emulator.store, 7)
    client = stripe_sdk.StripeClient(KEY, base_addresses={"api": emulator.url})
    params: dict[str, object] = {"limit": 3}
    if direction == "ending_before":
        params["ending_before"] = made[0]["id"]  # walks towards newer charges, oldest first
    seen = [c.id for c in client.v1.charges.list(params=params).auto_paging_iter()]  # type: ignore[arg-type]
    if direction == "starting_after":
        assert seen == [c["id"] for c in reversed(made)]
    else:
        assert seen == [c["id"] for c in made[1:]]
    with pytest.raises(stripe_sdk.InvalidRequestError, match="No such charge"):
        client.v1.charges.retrieve("ch_missing")


def test_an_authorization_is_captured_once(emulator: Emulator) -> None:
    charge = emulator.store.seed_charge({"amount": 4000, "captured": False})
    assert (charge["status"], charge["amount_captured"]) == ("succeeded", 0)
    assert charge["balance_transaction"] is None  # no money has moved
    url = f"{emulator.url}/v1/charges/{charge['id']}/capture"
    headers = {**AUTH, "Idempotency-Key": "cap-1"}
    captured = httpx.post(url, data={"expand[]": "balance_transaction"}, headers=headers).json()
    assert (captured["captured"], captured["amount_captured"]) == (True, 4000)
    assert captured["balance_transaction"]["amount"] == 4000
    assert httpx.post(url, headers=headers).headers["Idempotent-Replayed"] == "true"
    again = httpx.post(url, headers=AUTH)
    assert again.json()["error"]["code"] == "charge_already_captured"


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/v1/charges", {"limit": 3, "createdd[gte]": 5}, "createdd"),
        ("/v1/charges", {"created[gtee]": 5}, "created[gtee]"),
        ("/v1/charges", {"starting_afer": "ch_1"}, "starting_afer"),
        ("/v1/charges", {"charge": "ch_1"}, "charge"),  # a refunds filter, not a charges one
        ("/v1/refunds", {"customer": "cus_1"}, "customer"),
        ("/v1/customers", {"expnad[0]": "data.x"}, "expnad"),
        ("/v1/events", {"typ": "charge.*"}, "typ"),
        ("/v1/charges/ch_1", {"limit": 3}, "limit"),
        ("/v1/refunds/re_1", {"created[gte]": 5}, "created"),
        ("/v1/customers/cus_1", {"email": "a@b.org"}, "email"),
        ("/v1/balance_transactions/txn_1", {"limit": 1}, "limit"),
        ("/v1/events/evt_1", {"type": "x"}, "type"),
    ],
)
def test_an_undeclared_query_parameter_is_refused_like_stripe_does(
    emulator: Emulator, path: str, params: dict[str, object], unknown: str
) -> None:
    """Real Stripe answers any parameter its API does not declare with a 400 naming it (the
    top-level name; the full path when a declared parameter gets an unknown key), so a typo in
    a connector fails here as it would in production instead of being ignored."""
    response = get(emulator, path, **params)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "message": f"Received unknown parameter: {unknown}",
            "code": "parameter_unknown",  # Stripe's documented code for it
            "param": unknown,
        }
    }


def test_every_declared_query_parameter_is_accepted(emulator: Emulator) -> None:
    (charge,) = seed_charges(emulator.store, 1)
    listed = {
        "/v1/charges": {
            "customer": charge["customer"],
            "payment_intent": charge["payment_intent"],
            "transfer_group": "",
        },
        "/v1/refunds": {"charge": charge["id"], "payment_intent": charge["payment_intent"]},
        "/v1/customers": {"email": "ada.lovelace@example.org", "test_clock": "clock_1"},
        "/v1/events": {"delivery_success": "true", "types[0]": "charge.succeeded"},
    }
    for path, params in listed.items():
        common = {"limit": 5, "created[gte]": 0}
        assert get(emulator, path, **params, **common).status_code == 200
    filtered = get(emulator, "/v1/charges", payment_intent=charge["payment_intent"]).json()
    assert [c["id"] for c in filtered["data"]] == [charge["id"]]
    assert get(emulator, "/v1/charges", payment_intent="pi_other").json()["data"] == []


@pytest.mark.parametrize(
    ("faults", "status", "raised"),
    [
        ({"rate_limit_storm": 1}, 429, stripe_sdk.RateLimitError),
        ({"error_rate": 1.0, "error_statuses": [500]}, 500, stripe_sdk.APIError),
        ({"error_rate": 1.0, "error_statuses": [503]}, 503, stripe_sdk.APIError),
        ({"timeout_rate": 1.0, "hang_seconds": 0.0}, 504, stripe_sdk.APIError),
    ],
)
def test_faults_answer_in_stripes_envelope_so_the_sdk_raises_its_own_error(
    emulator: Emulator, faults: dict[str, object], status: int, raised: type[Exception]
) -> None:
    emulator.app.state.settings.faults.update(**faults)
    response = get(emulator, "/v1/charges")
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == ("invalid_request_error" if status == 429 else "api_error")
    assert response.headers["Request-Id"].startswith("req_")
    emulator.app.state.settings.faults.update(**faults)
    client = stripe_sdk.StripeClient(KEY, base_addresses={"api": emulator.url})
    with pytest.raises(raised) as caught:
        client.v1.charges.list()
    assert caught.value.http_status == status
    assert "Invalid response object" not in str(caught.value)


def test_an_undeclared_form_parameter_is_refused_and_not_saved_for_the_key(
    emulator: Emulator,
) -> None:
    (charge,) = seed_charges(emulator.store, 1, amount=5000)
    headers = {**AUTH, "Idempotency-Key": "typo-1"}
    url = f"{emulator.url}/v1/refunds"
    typo = httpx.post(url, data={"charge": charge["id"], "amout": "100"}, headers=headers)
    assert typo.status_code == 400
    assert typo.json()["error"]["message"] == "Received unknown parameter: amout"
    assert emulator.store.refunds == {}
    fixed = httpx.post(url, data={"charge": charge["id"], "amount": "100"}, headers=headers)
    assert (fixed.status_code, fixed.json()["amount"]) == (200, 100)
    held = emulator.store.seed_charge({"amount": 4000, "captured": False})
    capture = f"{emulator.url}/v1/charges/{held['id']}/capture"
    refused = httpx.post(capture, data={"amount_to_capture": "4000"}, headers=AUTH)
    assert refused.json()["error"]["param"] == "amount_to_capture"
    assert emulator.store.charges[held["id"]]["captured"] is False


def test_expand_must_be_an_array(emulator: Emulator) -> None:
    seed_charges(emulator.store, 1)
    response = get(emulator, "/v1/charges", expand="data.customer")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expand"
    assert response.json()["error"]["message"] == "Invalid array"
