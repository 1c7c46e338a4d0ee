"""The Givebutter emulator answers like Givebutter: auth, paging envelope, filters, rate limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.givebutter.emulator.app import EmulatorSettings, GivebutterState, create_app
from connectors.givebutter.emulator.shapes import KINDS
from core.emulation import EmulatorServer

KEY = "gb-emulator-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def emulated() -> Iterator[tuple[httpx.Client, GivebutterState]]:
    app = create_app(EmulatorSettings(api_keys=[KEY], requests_per_minute=3))
    state: GivebutterState = app.state.emulator
    state.seed(count=5)
    with EmulatorServer(app) as server, httpx.Client(base_url=server.url) as http:
        yield http, state


def test_a_missing_or_wrong_key_is_unauthenticated(emulated) -> None:
    http, _ = emulated
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": KEY}):
        response = http.get("/v1/transactions", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthenticated."}


def test_pages_have_the_laravel_envelope(emulated) -> None:
    http, _ = emulated
    body = http.get("/v1/transactions", params={"per_page": 2, "page": 2}, headers=AUTH).json()
    assert len(body["data"]) == 2
    assert body["links"]["next"].endswith("/v1/transactions?page=3")
    assert body["links"]["prev"].endswith("/v1/transactions?page=1")
    meta = body["meta"]
    assert (meta["current_page"], meta["last_page"], meta["per_page"]) == (2, 3, 2)
    assert (meta["from"], meta["to"], meta["total"]) == (3, 4, 5)


def test_per_page_past_100_is_refused(emulated) -> None:
    http, _ = emulated
    response = http.get("/v1/transactions", params={"per_page": 101}, headers=AUTH)
    assert response.status_code == 422
    assert "per_page" in response.json()["errors"]


def test_updated_after_filters_and_a_bad_date_is_a_422(emulated) -> None:
    http, state = emulated
    rows = list(state.records.values())
    changed = state.refund(rows[0]["id"])
    since = rows[-1]["updated_at"]
    body = http.get("/v1/transactions", params={"updatedAfter": since}, headers=AUTH).json()
    assert [r["id"] for r in body["data"]] == [changed["id"]]
    bad = http.get("/v1/transactions", params={"updatedAfter": "last week"}, headers=AUTH)
    assert bad.status_code == 422
    assert bad.json()["message"] == "The updated after field must be a valid date."


def test_sorting_oldest_first(emulated) -> None:
    http, _ = emulated
    body = http.get("/v1/transactions", params={"sortBy": "created_at"}, headers=AUTH).json()
    created = [r["created_at"] for r in body["data"]]
    assert created == sorted(created)
    assert len(created) == 5


def test_one_transaction_by_id(emulated) -> None:
    http, state = emulated
    tid = next(iter(state.records))
    assert http.get(f"/v1/transactions/{tid}", headers=AUTH).json()["id"] == tid
    assert http.get("/v1/transactions/nope", headers=AUTH).status_code == 404


def test_past_the_minute_limit_comes_a_429_with_retry_after(emulated) -> None:
    http, _ = emulated
    statuses = [http.get("/v1/transactions", headers=AUTH).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = http.get("/v1/transactions", headers=AUTH)
    assert refused.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_reset_empties_the_account(emulated) -> None:
    http, _ = emulated
    http.post("/_emulator/faults", json={"fail_next": [500]})
    assert http.post("/_emulator/reset").json() == {"reset": True}
    assert http.get("/_emulator/state").json() == {"transactions": [], "requests": []}
    assert http.get("/v1/transactions", headers=AUTH).json()["data"] == []


def test_refund_flags_live_on_the_nested_entry_and_status_stays(emulated) -> None:
    """Givebutter's published shape: a refund shows on ``transactions[0]``, never at the top."""
    http, state = emulated
    tid = next(iter(state.records))
    state.refund(tid)
    body = http.get(f"/v1/transactions/{tid}", headers=AUTH).json()
    assert body["status"] == "succeeded"
    assert not {"refunded", "refunded_at", "captured", "captured_at", "line_items"} & set(body)
    (entry,) = body["transactions"]
    assert entry["refunded"] is True
    assert entry["refunded_at"] == body["updated_at"]


@pytest.mark.parametrize(
    ("mode", "shows"),
    [
        ("flag", lambda t: t[0]["refunded"] and t[0]["amount"] == 50.0 and len(t) == 1),
        ("reduced", lambda t: not t[0]["refunded"] and t[0]["amount"] == 30.0 and len(t) == 1),
        ("refund_entry", lambda t: not t[0]["refunded"] and t[1]["amount"] == -20.0),
    ],
)
def test_a_partial_refund_shows_as_the_switch_says(mode: str, shows) -> None:
    state = GivebutterState(EmulatorSettings(partial_refunds=mode))
    (record,) = state.seed(given=[{"amount": 50.0, "donated": 50.0, "payout": 48.0}])
    state.refund(record["id"], amount=20)
    assert record["amount"] == 50.0  # the transaction keeps what was charged
    assert shows(record["transactions"])


def test_every_state_can_be_seeded() -> None:
    state = GivebutterState(EmulatorSettings())
    made = dict(zip(KINDS, state.seed_kinds(*KINDS), strict=True))
    statuses = {kind: (r["status"], r["transactions"][0]["captured"]) for kind, r in made.items()}
    assert statuses["authorized"] == ("authorized", False)
    assert statuses["check_not_received"] == ("authorized", False)
    assert statuses["failed"] == ("failed", False)
    assert statuses["cancelled"] == ("cancelled", False)
    assert made["refunded"]["transactions"][0]["refunded"] is True
    assert made["recurring"]["is_recurring"]
    assert made["recurring"]["plan_id"]
    assert made["check"]["is_offline"]
    assert made["check"]["check_number"]


def test_faults_answer_in_laravel_words(emulated) -> None:
    http, _ = emulated
    http.post("/_emulator/faults", json={"rate_limit_storm": 1, "fail_next": [503]})
    storm = http.get("/v1/transactions", headers=AUTH)
    assert (storm.status_code, storm.json()) == (429, {"message": "Too Many Attempts."})
    assert storm.headers["Retry-After"] == "1"
    down = http.get("/v1/transactions", headers=AUTH)
    assert (down.status_code, down.json()) == (503, {"message": "Service Unavailable"})


def test_a_bad_scope_or_sort_is_a_422_naming_the_parameter(emulated) -> None:
    http, _ = emulated
    for params, field in (({"scope": "mine"}, "scope"), ({"sortByDesc": "fee"}, "sortByDesc")):
        refused = http.get("/v1/transactions", params=params, headers=AUTH)
        assert refused.status_code == 422
        assert set(refused.json()) == {"message", "errors"}
        assert list(refused.json()["errors"]) == [field]


def test_check_deposit_filters_leave_out_online_gifts(emulated) -> None:
    http, state = emulated
    (check,) = state.seed_kinds("check")
    since = {"checkDepositedAfter": "2000-01-01T00:00:00Z"}
    body = http.get("/v1/transactions", params=since, headers=AUTH).json()
    assert [r["id"] for r in body["data"]] == [check["id"]]
