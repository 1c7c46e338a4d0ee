"""The Donorbox emulator answers like Donorbox: Basic auth, bare arrays, day filters, order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from connectors.donorbox.emulator.app import DonorboxState, EmulatorSettings, create_app
from core.emulation import EmulatorServer
from tests.contracts.support import violations

DONATION = "donorbox/donation.json"

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


def test_a_page_is_a_bare_array_newest_first(emulated) -> None:
    http, _ = emulated
    body = http.get("/api/v1/donations", params={"per_page": 4}).json()
    assert isinstance(body, list)
    assert [d["id"] for d in body] == [6, 5, 4, 3]
    second = http.get("/api/v1/donations", params={"per_page": 4, "page": 2}).json()
    assert [d["id"] for d in second] == [2, 1]
    assert http.get("/api/v1/donations", params={"per_page": 4, "page": 3}).json() == []


def test_a_per_page_over_the_maximum_falls_back_to_the_default() -> None:
    """README, Pagination: "maximum 100 allowed. If it exceeds the maximum, it will fallback to
    default" (50), not to the maximum."""
    app = create_app(EmulatorSettings(credentials={EMAIL: KEY}))
    app.state.emulator.seed(count=120)
    with (
        EmulatorServer(app) as server,
        httpx.Client(base_url=server.url, auth=(EMAIL, KEY)) as http,
    ):
        sizes = {
            n: len(http.get("/api/v1/donations", params={"per_page": n}).json())
            for n in (100, 101, 500)
        }
        default = len(http.get("/api/v1/donations").json())
    assert sizes == {100: 100, 101: 50, 500: 50}
    assert default == 50


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
    assert (donation.get("stripe_charge_id") or "ch_").startswith("ch_")


def test_a_donation_has_only_documented_keys_and_its_donor_no_phone(emulated) -> None:
    http, _ = emulated
    for donation in http.get("/api/v1/donations").json():
        assert "phone" not in donation["donor"]
        assert violations(donation, DONATION, "donation_documented_keys_only") == []


@pytest.mark.parametrize(
    ("shows", "full", "partial"),
    [
        ("stays_paid", "paid", "paid"),
        ("refunded", "refunded", "paid"),
        ("refunded_or_partially_refunded", "refunded", "partially_refunded"),
    ],
)
def test_a_refund_shows_in_amount_refunded_and_as_the_switch_says_in_status(
    emulated, shows: str, full: str, partial: str
) -> None:
    http, state = emulated
    state.settings.refund_status = shows  # type: ignore[assignment]
    whole, half = state.records[1], state.records[2]
    control = str(http.base_url.join("/_emulator/donations"))
    assert httpx.post(f"{control}/1/refund", json={}).json()["amount_refunded"] == whole["amount"]
    httpx.post(f"{control}/2/refund", json={"amount": "5"}).raise_for_status()
    shown = {d["id"]: d for d in http.get("/api/v1/donations").json()}
    assert (shown[1]["status"], shown[2]["status"], shown[3]["status"]) == (full, partial, "paid")
    assert shown[2]["amount_refunded"] == "5.0"
    assert shown[2]["formatted_amount_refunded"] == "$5"
    assert shown[3]["amount_refunded"] == "0.0"
    assert half["amount"] == shown[2]["amount"]  # the gift's amount is not netted


def test_each_payment_type_has_its_samples_keys_unless_all_are_asked_for(emulated) -> None:
    http, state = emulated
    state.seed(given=[{"donation_type": "paypal", "stripe_charge_id": None}])
    state.seed(given=[{"donation_type": "stripe", "stripe_charge_id": "ch_x"}])
    for keys in ("per_sample", "all_documented"):
        state.settings.keys = keys  # type: ignore[assignment]
        body = {d["id"]: d for d in http.get("/api/v1/donations", params={"id": 7}).json()}
        body |= {d["id"]: d for d in http.get("/api/v1/donations", params={"id": 8}).json()}
        by_paypal, by_card = body[7], body[8]
        for donation in body.values():
            assert violations(donation, DONATION, "donation_documented_keys_only") == []
        assert by_card["stripe_charge_id"] == "ch_x"
        assert "address_line_2" in by_card["donor"]
        if keys == "per_sample":
            assert "stripe_charge_id" not in by_paypal
            assert "designation" not in by_paypal
            assert "address_line_2" not in by_paypal["donor"]
        else:
            assert by_paypal["stripe_charge_id"] is None
            assert set(by_paypal) == set(by_card)


@pytest.mark.parametrize(
    ("dialect", "json_429", "json_500"),
    [
        (
            "json",
            {"status": 429, "error": "Too Many Requests"},
            {"status": 500, "error": "Internal Server Error"},
        ),
        ("html", None, None),
    ],
)
def test_faults_answer_in_a_rails_dialect(emulated, dialect, json_429, json_500) -> None:
    http, state = emulated
    state.settings.errors = dialect
    state.settings.faults.update(rate_limit_storm=1, storm_retry_after=7)
    throttled = http.get("/api/v1/donations")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    state.settings.faults.update(error_rate=1.0, error_statuses=[500])
    broken = http.get("/api/v1/donations")
    state.settings.faults.clear()
    state.fail_next.append(503)
    unavailable = http.get("/api/v1/donations")
    assert (broken.status_code, unavailable.status_code) == (500, 503)
    if dialect == "json":
        assert throttled.json() == json_429
        assert broken.json() == json_500
        assert unavailable.json() == {"status": 503, "error": "Service Unavailable"}
    else:
        assert throttled.text == "Retry later\n"
        assert throttled.headers["content-type"].startswith("text/plain")
        assert "We're sorry, but something went wrong." in broken.text
        assert broken.headers["content-type"].startswith("text/html")
        assert unavailable.headers["content-type"].startswith("text/html")


def test_the_documented_filters(emulated) -> None:
    http, state = emulated
    state.seed(
        given=[
            {
                "amount": "500.0",
                "currency": "USD",
                "campaign": {"id": 9, "name": "Roof Fund"},
                "donor": {
                    **state.records[1]["donor"],
                    "id": 99,
                    "first_name": "Zora",
                    "last_name": "Hurston",
                    "email": "zora@example.org",
                },
            }
        ]
    )

    def ids(**params: Any) -> list[int]:
        return [d["id"] for d in http.get("/api/v1/donations", params=params).json()]

    assert ids(campaign_name="roof fund") == [7]
    assert ids(campaign_id=9) == [7]
    assert ids(first_name="Zora", last_name="hurston") == [7]
    assert ids(email="ZORA@example.org") == [7]
    assert ids(donor_id=99) == [7]
    assert ids(id=7) == [7]
    assert ids(**{"amount[usd][min]": "300"}) == [7]
    assert 7 not in ids(**{"amount[usd][max]": "300"})
    assert ids(**{"amount[eur][min]": "1"}) == []
    day = datetime.fromisoformat(state.records[3]["donation_date"].replace("Z", "+00:00")).date()
    for text in (
        day.isoformat(),
        day.strftime("%Y/%m/%d"),
        day.strftime("%Y%m%d"),
        day.strftime("%d-%m-%Y"),
    ):
        assert ids(date_from=text, date_to=text) == [3]
