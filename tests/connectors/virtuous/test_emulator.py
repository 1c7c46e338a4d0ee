"""The Virtuous emulator: auth, rate limit, holding area and import, reads, queries, faults.

Most tests drive the app in process with starlette's TestClient; the ones about sockets (dropped
connections, hangs, the server's life cycle) go through a real EmulatorServer on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from connectors.virtuous.emulator.app import EmulatorSettings, EmulatorState, create_app
from connectors.virtuous.emulator.settings import PERMISSIONS, User
from core.emulation import DropConnection, EmulatorServer, Faults

with warnings.catch_warnings():
    # starlette 1.x nudges towards httpx2 at import; the httpx it has is fine for tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY, KEY_SAME_ORG, KEY_OTHER_ORG, KEY_READ_ONLY = "key-1", "key-2", "key-3", "key-ro"
AUTH = {"Authorization": f"Bearer {KEY}"}
DENIED = {"message": "Authorization has been denied for this request."}
DOTNET_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,7}$")


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 4, 5, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_app(clock: Clock) -> Callable[..., Starlette]:
    def make(**overrides: Any) -> Starlette:
        settings: dict[str, Any] = {
            "api_keys": {
                KEY: "org-1",
                KEY_SAME_ORG: "org-1",
                KEY_OTHER_ORG: "org-2",
                KEY_READ_ONLY: {"org": "org-1", "permissions": PERMISSIONS - {"gifts:write"}},
            },
            "users": [
                User(email="ada@example.org", password="s3cret", org="org-1"),
                User(email="two@example.org", password="s3cret", two_factor=True, otp="424242"),
            ],
            "clock": clock,
        }
        return create_app(EmulatorSettings(**(settings | overrides)))

    return make


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def state(app: Starlette) -> EmulatorState:
    return app.state.emulator  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Starlette) -> TestClient:
    return TestClient(app, headers=AUTH)


def gift_tx(tid: str = "ch_1", **changes: Any) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "transactionSource": "Stripe",
        "transactionId": tid,
        "giftDate": "2025-04-05",
        "giftType": "Credit",
        "amount": "25.00",
        "contact": {
            "referenceId": "cus_1",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "email": "ada@example.org",
        },
    }
    return tx | changes


def seed(client: TestClient, **body: Any) -> dict[str, list[int]]:
    response = client.post("/_emulator/seed", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def run_import(client: TestClient) -> dict[str, Any]:
    return client.post("/_emulator/import").json()  # type: ignore[no-any-return]


# --- auth ------------------------------------------------------------------------------------


def test_api_key_is_accepted_with_json_and_rate_limit_headers(client: TestClient) -> None:
    response = client.get("/api/Organization/Current")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["organizationName"] == "Emulated Nonprofit"
    assert response.headers["X-RateLimit-Limit"] == "5000"
    assert response.headers["X-RateLimit-Remaining"] == "4999"
    assert int(response.headers["X-RateLimit-Reset"]) > time.time() - 10**9  # epoch seconds


@pytest.mark.parametrize(
    "header",
    [None, "Bearer nope", f"Bearer  {KEY}", f'Bearer "{KEY}"', f"Basic {KEY}", f"Bearer{KEY}"],
    ids=["missing", "unknown", "double-space", "quoted", "basic", "no-space"],
)
def test_bad_authorization_is_401(app: Starlette, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = TestClient(app).get("/api/Organization/Current", headers=headers)
    assert response.status_code == 401
    assert response.json() == DENIED
    assert "X-RateLimit-Remaining" not in response.headers  # no org, nothing counted


def test_a_permission_group_without_the_area_is_403(app: Starlette) -> None:
    reader = TestClient(app, headers={"Authorization": f"Bearer {KEY_READ_ONLY}"})
    response = reader.post("/api/v2/Gift/Transaction", json=gift_tx())
    assert response.status_code == 403
    assert "gifts:write" in response.json()["message"]
    assert response.headers["X-RateLimit-Remaining"] == "4999"
    assert reader.get("/api/Gift/1").status_code == 404


def test_password_grant_issues_a_token_shaped_like_the_recording(
    app: Starlette, clock: Clock
) -> None:
    response = TestClient(app).post(
        "/Token",
        data={"grant_type": "password", "username": "ada@example.org", "password": "s3cret"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token", "token_type", "expires_in", "refresh_token", "userName",
        "twoFactorEnabled", ".issued", ".expires",
    }  # fmt: skip
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1295999
    assert body["userName"] == "ada@example.org"
    assert body["twoFactorEnabled"] == "False"
    assert body[".issued"].endswith(" GMT")
    issued, expires = (
        parsedate_to_datetime(body[".issued"]),
        parsedate_to_datetime(body[".expires"]),
    )
    assert issued == clock.now.replace(microsecond=0)
    assert expires - issued == timedelta(seconds=1295999)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert TestClient(app).get("/api/Organization/Current", headers=bearer).status_code == 200


def test_bad_credentials_are_invalid_grant(app: Starlette) -> None:
    response = TestClient(app).post(
        "/Token", data={"grant_type": "password", "username": "ada@example.org", "password": "x"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The user name or password is incorrect.",
    }


def test_multipart_token_request_is_refused(app: Starlette) -> None:
    form = {"grant_type": (None, "password"), "username": (None, "ada@example.org")}
    response = TestClient(app).post("/Token", files=form)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_two_factor_needs_an_otp_as_form_field_or_header(app: Starlette) -> None:
    token = TestClient(app)
    form = {"grant_type": "password", "username": "two@example.org", "password": "s3cret"}
    first = token.post("/Token", data=form)
    assert first.status_code == 202
    assert first.content == b""
    assert token.post("/Token", data=form | {"otp": "000000"}).status_code == 400
    by_field = token.post("/Token", data=form | {"otp": "424242"})
    assert by_field.status_code == 200
    assert by_field.json()["twoFactorEnabled"] == "True"
    assert token.post("/Token", data=form, headers={"OTP": "424242"}).status_code == 200


def test_refresh_rotates_and_the_old_refresh_token_dies(app: Starlette) -> None:
    token = TestClient(app)
    form = {"grant_type": "password", "username": "ada@example.org", "password": "s3cret"}
    first = token.post("/Token", data=form).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = token.post("/Token", data=refresh)
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert second.json()["access_token"] != first["access_token"]
    reused = token.post("/Token", data=refresh)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    again = {"grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]}
    assert token.post("/Token", data=again).status_code == 200


def test_an_expired_access_token_is_401(make_app: Callable[..., Starlette], clock: Clock) -> None:
    app = make_app(token_lifetime_seconds=60)
    client = TestClient(app)
    form = {"grant_type": "password", "username": "ada@example.org", "password": "s3cret"}
    body = client.post("/Token", data=form).json()
    assert body["expires_in"] == 60
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/Organization/Current", headers=bearer).status_code == 200
    clock.advance(61)
    response = client.get("/api/Organization/Current", headers=bearer)
    assert response.status_code == 401
    assert response.json() == DENIED


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_is_per_organization_and_the_window_resets(
    make_app: Callable[..., Starlette], clock: Clock
) -> None:
    app = make_app(rate_limit=3, rate_window_seconds=2)
    client = TestClient(app)

    def call(key: str) -> httpx.Response:
        response: httpx.Response = client.get(
            "/api/Organization/Current", headers={"Authorization": f"Bearer {key}"}
        )
        return response

    assert [call(k).headers["X-RateLimit-Remaining"] for k in (KEY, KEY_SAME_ORG, KEY)] == [
        "2",
        "1",
        "0",
    ]
    limited = call(KEY_SAME_ORG)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert call(KEY_OTHER_ORG).status_code == 200  # another organization, another bucket
    client.post("/Token", data={"grant_type": "password"})  # neither counts
    client.get("/_emulator/state")
    clock.advance(2)
    fresh = call(KEY)
    assert fresh.status_code == 200
    assert fresh.headers["X-RateLimit-Remaining"] == "2"
    assert app.state.emulator.request_counts == {"org-1": 5, "org-2": 1}


# --- the holding area and the import ---------------------------------------------------------


def test_gift_transaction_waits_for_the_import(client: TestClient, state: EmulatorState) -> None:
    seed(client, projects=[{"name": "General Fund", "projectCode": "GEN"}])
    tx = gift_tx(
        designations=[{"code": "GEN", "amountDesignated": "25.00"}],
        customFields={"Acknowledgment Type": "Email"},
    )
    response = client.post("/api/v2/Gift/Transaction", json=tx)
    assert response.status_code == 200
    assert response.content == b""
    assert [p.transaction_id for p in state.pending] == ["ch_1"]
    missing = client.get("/api/Gift/Stripe/ch_1")
    assert (missing.status_code, missing.content) == (404, b"")

    summary = run_import(client)
    assert summary["giftsCreated"] == 1
    assert summary["contactsCreated"] == 1
    gift = client.get("/api/Gift/Stripe/ch_1").json()
    assert gift["amount"] == 25.0
    assert gift["amountFormatted"] == "$25.00"
    assert gift["giftDate"] == "2025-04-05T00:00:00"
    assert gift["giftDateFormatted"] == "4/5/2025"
    assert DOTNET_UTC.match(gift["createDateTimeUtc"])
    assert gift["giftDesignations"][0]["amountDesignated"] == 25.0
    assert gift["giftDesignations"][0]["projectCode"] == "GEN"
    assert gift["customFields"] == [
        {"name": "Acknowledgment Type", "value": "Email", "displayName": "Acknowledgment Type"}
    ]
    assert client.get(f"/api/Gift/{gift['id']}").json() == gift
    contact = client.get(f"/api/Contact/{gift['contactId']}").json()
    assert contact["contactReferences"] == [{"source": "Stripe", "id": "cus_1"}]
    assert contact["lifeToDateGiving"] == "$25"
    events = [item["event"] for item in state.outbox]
    assert events == ["ContactCreate", "GiftCreate"]
    webhook_gift = state.outbox[1]["payload"]["gift"]
    assert webhook_gift["customFields"] == {"Acknowledgment Type": "Email"}
    assert webhook_gift["id"] == gift["id"]


def test_a_transaction_is_accepted_once(client: TestClient) -> None:
    assert client.post("/api/v2/Gift/Transaction", json=gift_tx()).status_code == 200
    pending_twice = client.post("/api/v2/Gift/Transaction", json=gift_tx())
    assert pending_twice.status_code == 400
    assert "has already been submitted" in pending_twice.json()["message"]
    run_import(client)
    imported_twice = client.post("/api/v2/Gift/Transaction", json=gift_tx(amount="30"))
    assert imported_twice.status_code == 400
    assert "ch_1" in imported_twice.json()["message"]
    other_source = gift_tx(transactionSource="Givebutter")
    assert client.post("/api/v2/Gift/Transaction", json=other_source).status_code == 200


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"amount": None}, "transaction.amount"),
        ({"amount": "abc"}, "transaction.amount"),
        ({"giftDate": "yesterday-ish"}, "transaction.giftDate"),
        ({"giftType": ""}, "transaction.giftType"),
        ({"contact": {}}, "transaction.contact"),
        ({"frequency": "Bimontly"}, "transaction.frequency"),
        ({"designations": [{"code": "GEN", "amountDesignated": "x"}]},
         "transaction.designations[0].amountDesignated"),
    ],
)  # fmt: skip
def test_invalid_gift_transactions_are_400_with_model_state_when_strict(
    make_app: Callable[..., Starlette], changes: dict[str, Any], key: str
) -> None:
    app = make_app(transaction_validation="strict")
    response = TestClient(app, headers=AUTH).post(
        "/api/v2/Gift/Transaction", json=gift_tx(**changes)
    )
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "The request is invalid."
    assert key in body["modelState"]
    assert app.state.emulator.pending == []


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"amount": None}, "The Amount field is required."),
        ({"amount": "abc"}, "Could not convert string to decimal: abc."),
        ({"giftDate": "yesterday-ish"}, "The value 'yesterday-ish' is not a valid date."),
        ({"giftType": ""}, "The GiftType field is required."),
        ({"frequency": "Bimontly"}, "'Bimontly' is not a valid frequency"),
    ],
)
def test_lenient_accepts_a_gift_with_bad_values_and_the_import_sets_it_aside(
    client: TestClient, state: EmulatorState, changes: dict[str, Any], said: str
) -> None:
    assert client.post("/api/v2/Gift/Transaction", json=gift_tx(**changes)).status_code == 200
    (aside,) = run_import(client)["needsUpdate"]
    assert aside["transactionId"] == "ch_1"
    assert said in aside["reason"]
    assert state.gifts == {}
    holding = client.get("/_emulator/holding").json()
    assert holding == [
        {
            "transactionSource": "Stripe",
            "transactionId": "ch_1",
            "state": "needs update",
            "reason": aside["reason"],
        }
    ]
    again = client.post("/api/v2/Gift/Transaction", json=gift_tx())
    assert (again.status_code, "already been submitted" in again.text) == (400, True)


def test_lenient_still_refuses_what_cannot_bind(client: TestClient) -> None:
    response = client.post(
        "/api/v2/Gift/Transaction", json=gift_tx(contact={"id": "abc", "lastname": "X"})
    )
    assert response.status_code == 400
    assert list(response.json()["modelState"]) == ["transaction.contact.id"]


@pytest.mark.parametrize(
    "gift_date", ["7/1/2018", "2018-07-01", "7.1.2018", "2018-07-01T15:30:00Z"]
)
def test_gift_dates_in_every_accepted_form(client: TestClient, gift_date: str) -> None:
    assert (
        client.post("/api/v2/Gift/Transaction", json=gift_tx(giftDate=gift_date)).status_code == 200
    )
    run_import(client)
    assert client.get("/api/Gift/Stripe/ch_1").json()["giftDate"] == "2018-07-01T00:00:00"


def test_keys_are_case_insensitive(client: TestClient) -> None:
    tx = {
        "TransactionSource": "Stripe",
        "TRANSACTIONID": "ch_9",
        "GiftDate": "2025-04-05",
        "GiftType": "EFT",
        "Amount": 12.5,
        "CurrencyCode": "usd",
        "Contact": {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@example.org"},
    }
    assert client.post("/api/v2/Gift/Transaction", json=tx).status_code == 200
    run_import(client)
    gift = client.get("/api/Gift/Stripe/ch_9").json()
    assert (gift["amount"], gift["giftType"], gift["currencyCode"]) == (
        12.5,
        "Electronic Funds Transfer",
        "USD",
    )
    assert gift["contactName"] == "Grace Hopper"


@pytest.mark.parametrize("body", [b"", b"null", b"   "])
def test_a_null_body_is_the_recorded_400(client: TestClient, body: bytes) -> None:
    for path in ("/api/v2/Gift/Transaction", "/api/Contact/Transaction", "/api/Contact/Batch"):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json() == {"message": "The argument cannot be null"}


def test_a_batch_is_atomic_and_names_the_bad_index(make_app: Callable[..., Starlette]) -> None:
    app = make_app(transaction_validation="strict")
    client, state = TestClient(app, headers=AUTH), app.state.emulator
    transactions = [gift_tx(f"ch_{i}") for i in range(5)]
    for tx in transactions:
        del tx["giftType"], tx["giftDate"]
    transactions[3]["amount"] = "twelve"
    body = {
        "transactionSource": "Stripe",
        "defaultGiftType": "Credit",
        "defaultGiftDate": "4/5/2025",
        "transactions": transactions,
    }
    response = client.post("/api/v2/Gift/Transactions", json=body)
    assert response.status_code == 400
    assert list(response.json()["modelState"]) == ["transactions[3].amount"]
    assert state.pending == []
    transactions[3]["amount"] = "12"
    assert client.post("/api/v2/Gift/Transactions", json=body).status_code == 200
    assert len(state.pending) == 5
    assert run_import(client)["giftsCreated"] == 5
    assert client.get("/api/Gift/Stripe/ch_3").json()["giftType"] == "Credit"


def test_a_batch_with_a_duplicate_names_it(client: TestClient) -> None:
    client.post("/api/v2/Gift/Transaction", json=gift_tx("ch_2"))
    body = {"transactions": [gift_tx("ch_1"), gift_tx("ch_2"), gift_tx("ch_1")]}
    response = client.post("/api/v2/Gift/Transactions", json=body)
    assert response.status_code == 400
    assert "already been submitted" in response.json()["message"]
    assert set(response.json()["modelState"]) == {
        "transactions[1].transactionId",
        "transactions[2].transactionId",
    }


def test_a_batch_over_the_maximum_is_refused(make_app: Callable[..., Starlette]) -> None:
    client = TestClient(make_app(gift_batch_max_size=2), headers=AUTH)
    body = {"transactions": [gift_tx(f"ch_{i}") for i in range(3)]}
    response = client.post("/api/v2/Gift/Transactions", json=body)
    assert response.status_code == 400
    assert response.json()["modelState"] == {
        "transactions": ["A batch may contain at most 2 transactions."]
    }
    body["transactions"].pop()
    assert client.post("/api/v2/Gift/Transactions", json=body).status_code == 200


def test_contact_batch_recorded_behaviours(client: TestClient, state: EmulatorState) -> None:
    empty = client.post("/api/Contact/Batch", json={"contacts": []})
    assert (empty.status_code, empty.content) == (200, b"")
    wrong = client.post("/api/Contact/Batch", json={"contacts": {}})
    assert wrong.status_code == 400
    assert wrong.json() == {
        "message": "The request is invalid.",
        "modelState": {"unmatchedContactsBindingModel.contacts": ["An error has occurred."]},
    }
    contacts = [
        {"referenceId": "m1", "firstName": "Ada", "lastName": "Lovelace"},
        {"referenceId": "m2", "firstName": "Nameless"},
    ]
    bad = client.post(
        "/api/Contact/Batch", json={"referenceSource": "Mailchimp", "contacts": contacts}
    )
    assert list(bad.json()["modelState"]) == ["contacts[1].lastName"]
    contacts[1]["lastName"] = "Person"
    client.post("/api/Contact/Batch", json={"referenceSource": "Mailchimp", "contacts": contacts})
    assert run_import(client)["contactsCreated"] == 2
    assert client.get("/api/Contact/Mailchimp/m2").json()["name"] == "Nameless Person"


def test_import_matches_contacts_by_reference_then_email(
    client: TestClient, state: EmulatorState
) -> None:
    ids = seed(
        client,
        contacts=[
            {"firstName": "Ada", "lastName": "L", "email": "ada@example.org",
             "referenceSource": "Stripe", "referenceId": "cus_1"},
            {"firstName": "Bea", "lastName": "B", "email": "bea@example.org"},
        ],
    )["contacts"]  # fmt: skip
    # The reference wins over an email that belongs to someone else.
    by_reference = gift_tx("ch_1", contact={"referenceId": "cus_1", "email": "cy@x.org"})
    by_email = gift_tx("ch_2", contact={"referenceId": "cus_2", "email": "BEA@example.org"})
    stranger = gift_tx("ch_3", contact={"firstname": "Di", "lastname": "D", "email": "di@x.org"})
    for tx in (by_reference, by_email, stranger):
        assert client.post("/api/v2/Gift/Transaction", json=tx).status_code == 200
    contact_tx = {
        "referenceSource": "Stripe",
        "referenceId": "cus_1",
        "firstName": "Augusta Ada",
        "lastName": "L",
        "phone": "555-0100",
    }
    assert client.post("/api/Contact/Transaction", json=contact_tx).status_code == 200
    summary = run_import(client)
    assert summary["contactsCreated"] == 1
    owners = [client.get(f"/api/Gift/Stripe/ch_{i}").json()["contactId"] for i in (1, 2, 3)]
    assert owners[:2] == ids
    assert owners[2] not in ids
    bea = client.get(f"/api/Contact/{ids[1]}").json()
    assert {"source": "Stripe", "id": "cus_2"} in bea["contactReferences"]  # merged in
    ada = client.get(f"/api/Contact/{ids[0]}").json()
    assert ada["contactIndividuals"][0]["firstName"] == "Augusta Ada"
    assert "ContactUpdate" in [item["event"] for item in state.outbox]


def test_a_gift_that_cannot_be_placed_needs_update(
    client: TestClient, state: EmulatorState
) -> None:
    tx = gift_tx(designations=[{"code": "NOPE", "amountDesignated": "25"}])
    client.post("/api/v2/Gift/Transaction", json=tx)
    summary = run_import(client)
    assert summary["needsUpdate"][0]["transactionId"] == "ch_1"
    assert state.gifts == {}
    assert state.contacts == {}  # nothing half-created
    assert client.get("/api/Gift/Stripe/ch_1").status_code == 404
    assert client.post("/api/v2/Gift/Transaction", json=tx).status_code == 400


def test_recurring_payments_link_to_their_schedule(
    client: TestClient, state: EmulatorState
) -> None:
    client.post("/api/v2/Gift/Transaction", json=gift_tx("sub_1", frequency="Monthly"))
    follow_up = gift_tx("in_2", recurringGiftTransactionId="sub_1", giftDate="2025-05-05")
    client.post("/api/v2/Gift/Transaction", json=follow_up)
    run_import(client)
    (schedule,) = state.recurring_gifts.values()
    assert schedule.frequency == "Monthly"
    assert len(schedule.payment_gift_ids) == 2
    payments = client.get("/api/Gift/Stripe/in_2").json()["recurringGiftPayments"]
    assert payments[0]["id"] == schedule.id


# --- direct endpoints ------------------------------------------------------------------------


def test_find_contact_reference_wins_and_404_is_empty(client: TestClient) -> None:
    ada, bea = seed(
        client,
        contacts=[
            {"lastName": "Ada", "email": "ada@example.org", "referenceSource": "Web",
             "referenceId": "w1"},
            {"lastName": "Bea", "email": "bea@example.org"},
        ],
    )["contacts"]  # fmt: skip
    assert client.get("/api/Contact/Find", params={"email": "BEA@example.org"}).json()["id"] == bea
    both = {"email": "bea@example.org", "referenceSource": "web", "referenceId": "w1"}
    assert client.get("/api/Contact/Find", params=both).json()["id"] == ada
    none = client.get("/api/Contact/Find", params={"email": "zed@example.org"})
    assert (none.status_code, none.content) == (404, b"")
    assert client.get("/api/Contact/Web/w1").json()["id"] == ada
    missing = client.get("/api/Contact/424242")
    assert (missing.status_code, missing.content) == (404, b"")
    assert "content-type" not in missing.headers


def test_put_contact_patches_and_moves_last_modified(
    client: TestClient, clock: Clock, state: EmulatorState
) -> None:
    (cid,) = seed(client, contacts=[{"contactType": "Organization", "name": "Acme"}])["contacts"]
    before = client.get(f"/api/Contact/{cid}").json()
    clock.advance(86400)
    after = client.put(f"/api/Contact/{cid}", json={"informalName": "ACME"}).json()
    assert (after["name"], after["informalName"]) == ("Acme", "ACME")
    assert after["modifiedDateTimeUtc"] > before["modifiedDateTimeUtc"]
    assert state.outbox[-1]["event"] == "ContactUpdate"
    since_today = {
        "groups": [
            {"conditions": [{"parameter": "Last Modified Date", "operator": "OnOrAfter",
                             "value": clock.now.date().isoformat()}]}
        ]
    }  # fmt: skip
    assert client.post("/api/Contact/Query", json=since_today).json()["total"] == 1


def test_individuals_and_addresses(client: TestClient) -> None:
    (cid,) = seed(client, contacts=[{"firstName": "Ada", "lastName": "L", "address1": "1 Main"}])[
        "contacts"
    ]
    person = {
        "contactId": cid,
        "firstName": "Bob",
        "lastName": "L",
        "contactMethods": [{"type": "Mobile Phone", "value": "555-0101", "isPrimary": True}],
    }
    created = client.post("/api/ContactIndividual", json=person).json()
    assert created["contactMethods"][0]["value"] == "555-0101"
    assert client.get(f"/api/ContactIndividual/{created['id']}").json()["firstName"] == "Bob"
    assert len(client.get(f"/api/ContactIndividual/ByContact/{cid}").json()) == 2
    replaced = client.put(f"/api/ContactIndividual/{created['id']}", json={"firstName": "Rob"})
    assert (replaced.json()["firstName"], replaced.json()["lastName"]) == ("Rob", None)
    bad = client.post("/api/ContactIndividual", json=person | {"contactId": 1})
    assert bad.status_code == 400
    address = {
        "contactId": cid,
        "address1": "2 Side St",
        "city": "Springfield",
        "setAsPrimary": True,
    }
    new = client.post("/api/ContactAddress", json=address).json()
    assert client.get(f"/api/Contact/{cid}").json()["address"]["id"] == new["id"]
    assert [a["isPrimary"] for a in client.get(f"/api/ContactAddress/ByContact/{cid}").json()] == [
        True,
        False,
    ]
    moved = client.put(f"/api/ContactAddress/{new['id']}", json={"address1": "3 Far Rd"}).json()
    assert (moved["address1"], moved["city"]) == ("3 Far Rd", None)
    assert client.get("/api/ContactAddress/1").status_code == 404


def test_reversing_transaction(client: TestClient, state: EmulatorState) -> None:
    (cid,) = seed(client, contacts=[{"lastName": "Ada"}])["contacts"]
    (gid,) = seed(
        client,
        gifts=[{"contactId": cid, "giftType": "Cash", "giftDate": "2025-01-02", "amount": "40"}],
    )["gifts"]
    body = {"reversedGiftId": gid, "giftDate": "2025-02-01", "notes": "refund"}
    reversal = client.post("/api/Gift/ReversingTransaction", json=body)
    assert reversal.status_code == 200
    assert reversal.json()["amount"] == -40.0
    assert reversal.json()["giftType"] == "Reversing Transaction"
    assert reversal.json()["amountFormatted"] == "-$40.00"
    assert state.outbox[-1]["event"] == "GiftCreate"
    repeat = client.post("/api/Gift/ReversingTransaction", json=body)  # nothing says it is refused
    assert (repeat.status_code, repeat.json()["amount"]) == (200, -40.0)
    again = body | {"reversedGiftId": reversal.json()["id"]}
    assert client.post("/api/Gift/ReversingTransaction", json=again).status_code == 400
    unknown = client.post("/api/Gift/ReversingTransaction", json=body | {"reversedGiftId": 7})
    assert (unknown.status_code, unknown.content) == (404, b"")


def test_a_repeated_reversal_is_refused_when_switched_on(
    make_app: Callable[..., Starlette],
) -> None:
    client = TestClient(make_app(repeated_reversal="refuse"), headers=AUTH)
    (cid,) = seed(client, contacts=[{"lastName": "Ada"}])["contacts"]
    gift = {"contactId": cid, "giftType": "Cash", "giftDate": "2025-01-02", "amount": "40"}
    (gid,) = seed(client, gifts=[gift])["gifts"]
    body = {"reversedGiftId": gid, "giftDate": "2025-02-01"}
    assert client.post("/api/Gift/ReversingTransaction", json=body).status_code == 200
    repeat = client.post("/api/Gift/ReversingTransaction", json=body)
    assert repeat.status_code == 400
    assert "already been reversed" in repeat.json()["message"]


def test_projects(client: TestClient) -> None:
    pid, _ = seed(
        client, projects=[{"name": "General", "projectCode": "GEN"}, {"name": "Wells", "code": "W"}]
    )["projects"]
    project = client.get(f"/api/Project/{pid}").json()
    assert (project["projectCode"], project["customFields"]) == ("GEN", {})
    assert client.get("/api/Project/Code/W").json()["name"] == "Wells"
    assert client.get("/api/Project/Code/X").status_code == 404
    query = {
        "groups": [{"conditions": [{"parameter": "Project Code", "operator": "Is", "value": "w"}]}]
    }
    assert client.post("/api/Project/Query", json=query).json()["total"] == 1


# --- queries ---------------------------------------------------------------------------------


@pytest.fixture
def gifts(client: TestClient) -> list[int]:
    seed(client, projects=[{"name": "General", "projectCode": "GEN"}])
    (cid,) = seed(client, contacts=[{"firstName": "Ada", "lastName": "L"}])["contacts"]
    rows = [("Cash", "10.50", "2025-01-01"), ("Check", "100", "2025-02-01"),
            ("Credit", "55", "2025-03-01"), ("Cash", "5", "2025-04-01")]  # fmt: skip
    body = [
        {"contactId": cid, "giftType": t, "amount": a, "giftDate": d, "transactionSource": "S",
         "transactionId": f"t{i}", "designations": [{"code": "GEN", "amountDesignated": a}]}
        for i, (t, a, d) in enumerate(rows)
    ]  # fmt: skip
    return seed(client, gifts=body)["gifts"]


def where(*groups: list[tuple[str, str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "groups": [
            {"conditions": [{"parameter": p, "operator": o, "value": v} for p, o, v in group]}
            for group in groups
        ],
        **extra,
    }


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["list"]]


def test_query_and_within_groups_or_across(client: TestClient, gifts: list[int]) -> None:
    cheap_cash = [("Gift Type", "Is", "Cash"), ("Amount", "LessThan", "10")]
    big = [("Amount", "GreaterThanOrEqual", "100")]
    assert ids(client.post("/api/Gift/Query", json=where(cheap_cash))) == [gifts[3]]
    assert ids(client.post("/api/Gift/Query", json=where(cheap_cash, big))) == [gifts[1], gifts[3]]
    assert ids(client.post("/api/Gift/Query", json={"groups": []})) == gifts


def test_query_sort_and_paging(client: TestClient, gifts: list[int]) -> None:
    body = where(sortBy="Amount", descending="True")
    page = client.post("/api/Gift/Query?skip=1&take=2", json=body)
    assert ids(page) == [gifts[2], gifts[0]]
    assert page.json()["total"] == 4
    for name in ("Gift Id", "GiftId", "Id"):
        assert (
            ids(client.post("/api/Gift/Query", json=where(sortBy=name, descending=True)))[0]
            == gifts[3]
        )
    assert ids(client.post("/api/Gift/Query", json=where(sortBy="GiftDate"))) == gifts
    assert len(ids(client.post("/api/Gift/Query", json={}))) == 4  # default take is 10


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"parameter": "Amount", "operator": "Between", "value": "10", "secondaryValue": "55"},
         [0, 2]),
        ({"parameter": "Gift Date", "operator": "OnOrBefore", "value": "2/1/2025"}, [0, 1]),
        ({"parameter": "Gift Date", "operator": "After", "value": "2025-03-01"}, [3]),
        ({"parameter": "Gift Type", "operator": "In", "values": ["Check", "Credit"]}, [1, 2]),
        ({"parameter": "Gift Type", "operator": "IsAnyOf", "values": ["check"]}, [1]),
        ({"parameter": "Gift Type", "operator": "NotIn", "values": ["Cash"]}, [1, 2]),
        ({"parameter": "Gift Type", "operator": "IsNot", "value": "Cash"}, [1, 2]),
        ({"parameter": "Transaction Id", "operator": "StartsWith", "value": "T"}, [0, 1, 2, 3]),
        ({"parameter": "Gift Type", "operator": "Contains", "value": "as"}, [0, 3]),
        ({"parameter": "Batch", "operator": "IsNotKnown"}, [0, 1, 2, 3]),
        ({"parameter": "Batch", "operator": "IsKnown"}, []),
        ({"parameter": "Project Code", "operator": "Is", "value": "GEN"}, [0, 1, 2, 3]),
        ({"parameter": "Gift Id", "operator": "GreaterThan", "value": "100002"}, [2, 3]),
    ],
)  # fmt: skip
def test_query_operators(
    client: TestClient, gifts: list[int], condition: dict[str, Any], expected: list[int]
) -> None:
    body = {"groups": [{"conditions": [condition]}]}
    assert ids(client.post("/api/Gift/Query", json=body)) == [gifts[i] for i in expected]


def test_abbreviated_and_full_rows(client: TestClient, gifts: list[int]) -> None:
    body = where([("Gift Id", "Is", str(gifts[0]))])
    (row,) = client.post("/api/Gift/Query", json=body).json()["list"]
    assert (row["amount"], row["giftDate"]) == ("$10.50", "1/1/2025")
    assert "transactionSource" not in row
    (full,) = client.post("/api/Gift/Query/FullGift", json=body).json()["list"]
    assert (full["amount"], full["giftDate"]) == (10.5, "2025-01-01T00:00:00")
    assert full["transactionId"] == "t0"
    (contact,) = client.post("/api/Contact/Query", json={}).json()["list"]
    assert (contact["name"], contact["contactName"]) == ("Ada L", "Ada L")
    (full_contact,) = client.post("/api/Contact/Query/FullContact", json={}).json()["list"]
    assert full_contact["lifeToDateGiving"] == "$170"
    by_contact = client.get(f"/api/Gift/ByContact/{row['contactId']}?sortBy=Amount&take=2")
    assert [r["amount"] for r in by_contact.json()["list"]] == ["$5.00", "$10.50"]


def test_contact_query_parameters(client: TestClient) -> None:
    seed(
        client,
        contacts=[
            {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org"},
            {"firstName": "Grace", "lastName": "Hopper", "email": "grace@navy.mil"},
        ],
    )
    found = client.post("/api/Contact/Query", json=where([("Email Address", "EndsWith", ".mil")]))
    assert [r["name"] for r in found.json()["list"]] == ["Grace Hopper"]
    either = where([("Last Name", "Is", "lovelace")], [("First Name", "StartsWith", "gr")])
    assert client.post("/api/Contact/Query", json=either).json()["total"] == 2
    named = where([("Contact Name", "Contains", "hop")], sortBy="Last Modified Date")
    assert client.post("/api/Contact/Query/FullContact", json=named).json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (where([("Colour", "Is", "red")]), "parameter 'Colour'"),
        (where([("Amount", "Contains", "1")]), "operator 'Contains'"),
        (where([("Amount", "Is", "lots")]), "value 'lots'"),
        (where(sortBy="Colour"), "sortBy 'Colour'"),
        (where(descending="maybe"), "descending"),
    ],
)
def test_bad_queries_are_400(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    response = client.post("/api/Gift/Query", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_take_is_clamped_and_full_pages_can_time_out(make_app: Callable[..., Starlette]) -> None:
    client = TestClient(make_app(query_max_take=2, full_query_timeout_take=1), headers=AUTH)
    seed(client, contacts=[{"lastName": f"N{i}"} for i in range(3)])
    clamped = client.post("/api/Contact/Query?take=1000", json={})
    assert (len(clamped.json()["list"]), clamped.json()["total"]) == (2, 3)
    too_big = client.post("/api/Contact/Query/FullContact?take=2", json={})
    assert too_big.status_code == 504
    assert client.post("/api/Contact/Query/FullContact?take=1", json={}).status_code == 200
    assert client.post("/api/Contact/Query?take=-1", json={}).status_code == 400


# --- error shapes, the control plane, webhooks -----------------------------------------------


def test_envelope_error_shape(make_app: Callable[..., Starlette]) -> None:
    app = make_app(error_shape="envelope", transaction_validation="strict")
    client = TestClient(app, headers=AUTH)
    response = client.post("/api/v2/Gift/Transaction", json=gift_tx(amount="x"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"][0]["field"] == "transaction.amount"
    assert client.get("/api/Gift/5").json()["error"]["code"] == "NOT_FOUND"


def test_unknown_routes_are_json_404(client: TestClient) -> None:
    response = client.get("/api/Nothing/Here")
    assert response.status_code == 404
    assert "No HTTP resource" in response.json()["message"]


def test_seed_keys_and_users_then_reset(client: TestClient, state: EmulatorState) -> None:
    seed(client, apiKeys={"late-key": "org-9"}, users=[{"email": "x@y.org", "password": "p"}])
    late = {"Authorization": "Bearer late-key"}
    assert client.get("/api/Organization/Current", headers=late).status_code == 200
    token = client.post(
        "/Token", data={"grant_type": "password", "username": "x@y.org", "password": "p"}
    )
    assert token.status_code == 200
    client.post("/api/v2/Gift/Transaction", json=gift_tx())
    assert client.get("/_emulator/state").json()["counts"]["pending"] == 1
    client.post("/_emulator/reset")
    assert state.pending == []
    assert client.get("/api/Organization/Current", headers=late).status_code == 401
    assert client.get("/api/Organization/Current").status_code == 200  # settings' keys stay


def test_request_log_leaves_credentials_out(client: TestClient, state: EmulatorState) -> None:
    client.post("/api/v2/Gift/Transaction", json=gift_tx())
    client.post("/Token", data={"grant_type": "password", "username": "a", "password": "hunter2"})
    log = client.get("/_emulator/requests").json()
    assert [(e["method"], e["path"], e["status"], e["org"]) for e in log] == [
        ("POST", "/api/v2/Gift/Transaction", 200, "org-1"),
        ("POST", "/Token", 400, None),
    ]
    assert "authorization" not in log[0]["headers"]
    assert "ch_1" in log[0]["body"]
    assert log[1]["body"] is None
    assert "hunter2" not in str(log)


def test_webhooks_are_signed_when_a_secret_is_set(make_app: Callable[..., Starlette]) -> None:
    app = make_app(webhook_secret="whsec")
    client = TestClient(app, headers=AUTH)
    client.post("/api/v2/Gift/Transaction", json=gift_tx())
    run_import(client)
    item = client.get("/_emulator/outbox").json()[-1]
    expected = hmac.new(b"whsec", item["body"].encode(), hashlib.sha256).digest()
    assert item["headers"]["X-Virtuous-Signature"] == base64.b64encode(expected).decode()
    assert item["payload"]["event"] == "GiftCreate"


def test_clock_endpoint_moves_time(client: TestClient, clock: Clock) -> None:
    before = client.get("/_emulator/state").json()["now"]
    after = client.post("/_emulator/clock", json={"advanceSeconds": 3600}).json()["now"]
    assert before[:13] == "2025-04-05T12"
    assert after[:13] == "2025-04-05T13"


# --- faults ----------------------------------------------------------------------------------


def test_error_rate_one_gives_5xx_but_not_on_the_control_plane(
    client: TestClient, state: EmulatorState
) -> None:
    assert client.post("/_emulator/faults", json={"error_rate": 1.0, "seed": 7}).status_code == 200
    statuses = {client.get("/api/Organization/Current").status_code for _ in range(20)}
    assert statuses <= {500, 502, 503}
    assert len(statuses) > 1
    assert client.get("/_emulator/state").status_code == 200
    assert state.requests[-1].status in {500, 502, 503}
    assert state.request_counts == {}  # a fault in front of the API does not count
    assert client.post("/_emulator/faults", json={"error_rate": 2}).status_code == 400


def test_a_storm_of_429s_then_calm(client: TestClient, state: EmulatorState) -> None:
    state.faults.update(rate_limit_storm=2, storm_retry_after=3)
    first, second, third = (client.get("/api/Organization/Current") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "3"


def test_latency_is_added(client: TestClient, state: EmulatorState) -> None:
    state.faults.latency_seconds = 0.2
    started = time.monotonic()
    assert client.get("/api/Organization/Current").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_a_drop_in_process_raises(client: TestClient, state: EmulatorState) -> None:
    state.faults.drop_rate = 1.0
    with pytest.raises(DropConnection):
        client.get("/api/Organization/Current")


def test_faults_reset_to_the_settings(make_app: Callable[..., Starlette]) -> None:
    app = make_app(faults=Faults(latency_seconds=0.01))
    client = TestClient(app)
    client.post("/_emulator/faults", json={"error_rate": 1})
    client.post("/_emulator/reset")
    assert client.get("/_emulator/faults").json()["error_rate"] == 0
    assert client.get("/_emulator/faults").json()["latency_seconds"] == 0.01


# --- over a real socket ----------------------------------------------------------------------


@pytest.fixture
def server(make_app: Callable[..., Starlette]) -> Iterator[EmulatorServer]:
    with EmulatorServer(make_app(clock=None)) as running:
        yield running


def test_server_serves_on_loopback_and_stops(make_app: Callable[..., Starlette]) -> None:
    server = EmulatorServer(make_app()).start()
    assert re.match(r"^http://127\.0\.0\.1:\d+$", server.url)
    response = httpx.get(f"{server.url}/api/Organization/Current", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    server.stop()
    server.stop()  # twice is fine
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/Organization/Current", headers=AUTH)


def test_a_full_round_trip_over_http(server: EmulatorServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        form = {"grant_type": "password", "username": "ada@example.org", "password": "s3cret"}
        access = http.post("/Token", data=form).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {access}"
        batch = {"transactionSource": "Stripe", "transactions": [gift_tx("a"), gift_tx("b")]}
        assert http.post("/api/v2/Gift/Transactions", json=batch).status_code == 200
        assert http.post("/_emulator/import").json()["giftsCreated"] == 2
        found = http.post("/api/Gift/Query/FullGift", json=where(sortBy="Transaction Id"))
        assert [g["transactionId"] for g in found.json()["list"]] == ["a", "b"]


def test_a_drop_closes_the_connection_without_a_response(server: EmulatorServer) -> None:
    faults = server.app.state.emulator.faults  # type: ignore[attr-defined]
    with httpx.Client(base_url=server.url, headers=AUTH) as http:
        faults.drop_rate = 1.0
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/api/Organization/Current")
        assert http.get("/_emulator/state").status_code == 200
        faults.drop_rate = 0.0
        assert http.get("/api/Organization/Current").status_code == 200


def test_a_lost_response_was_processed_all_the_same(server: EmulatorServer) -> None:
    state = server.app.state.emulator  # type: ignore[attr-defined]
    gift = {
        "transactionSource": "Web",
        "transactionId": "lost-1",
        "contact": {"email": "ada@example.org"},
        "giftDate": "2025-01-01",
        "giftType": "Cash",
        "amount": "5.00",
    }
    with httpx.Client(base_url=server.url, headers=AUTH) as http:
        state.faults.lost_response_rate = 1.0
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/api/v2/Gift/Transaction", json=gift)
        state.faults.lost_response_rate = 0.0
        assert [p.transaction_id for p in state.pending] == ["lost-1"]
        again = http.post("/api/v2/Gift/Transaction", json=gift)
        assert again.status_code == 400
        assert "already been submitted" in again.json()["message"]


def test_a_hang_outlasts_the_client_timeout(server: EmulatorServer) -> None:
    faults = server.app.state.emulator.faults  # type: ignore[attr-defined]
    faults.update(timeout_rate=1.0, hang_seconds=30)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/api/Organization/Current")
        faults.hang_seconds = 0.05
        assert http.get("/api/Organization/Current").status_code == 504
