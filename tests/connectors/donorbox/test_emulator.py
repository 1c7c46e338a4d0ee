"""The Donorbox emulator answers like Donorbox: Basic auth, bare arrays, day filters, order."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.donorbox.emulator.app import DonorboxState, EmulatorSettings, create_app
from core.emulation import EmulatorServer

EMAIL, KEY = "ops@example.org", "dbx-emulator-test-key"


@pytest.fixture
def emulated() -> Iterator[tuple[httpx.Client, DonorboxState]]:
    app = create_app(EmulatorSettings(credentials={EMAIL: KEY}, max_per_page=4))
    state: DonorboxState = app.state.emulator
    state.seed(count=6)
    with (
        EmulatorServer(app) as server,
        httpx.Client(base_url=server.url, auth=(EMAIL, KEY)) as http,
    ):
        yield http, state


def test_basic_auth_is_required(emulated) -> None:
    http, _ = emulated
    anonymous = httpx.get(str(http.base_url.join("/api/v1/donations")))
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    for auth in ((EMAIL, "wrong"), ("other@example.org", KEY)):
        response = http.get("/api/v1/donations", auth=auth)
        assert response.status_code == 401
        assert response.json() == {"error": "You need to sign in or sign up before continuing."}


def test_a_page_is_a_bare_array_newest_first_capped_at_the_maximum(emulated) -> None:
    http, state = emulated
    body = http.get("/api/v1/donations", params={"per_page": 50}).json()
    assert isinstance(body, list)
    assert [d["id"] for d in body] == [6, 5, 4, 3]  # per_page is capped at max_per_page (4)
    second = http.get("/api/v1/donations", params={"per_page": 4, "page": 2}).json()
    assert [d["id"] for d in second] == [2, 1]
    assert http.get("/api/v1/donations", params={"page": 3}).json() == []


def test_order_and_whole_day_date_filters(emulated) -> None:
    http, state = emulated
    days = sorted({d["donation_date"][:10] for d in state.records.values()})
    body = http.get(
        "/api/v1/donations",
        params={
            "order": "asc",
            "date_from": days[1],
            "date_to": days[2],
            "per_page": 4,
        },
    ).json()
    assert [d["donation_date"][:10] for d in body] == days[1:3]


def test_a_donation_looks_like_the_published_sample(emulated) -> None:
    http, _ = emulated
    donation = http.get("/api/v1/donations").json()[0]
    assert isinstance(donation["amount"], str)
    assert float(donation["amount"]) > 0
    assert donation["currency"] == "USD"
    assert donation["donation_date"].endswith("Z")
    assert set(donation["donor"]) >= {"id", "first_name", "last_name", "email", "zip_code"}
    assert donation["donation_type"] in ("stripe", "paypal")
    assert (donation["stripe_charge_id"] or "ch_").startswith("ch_")
