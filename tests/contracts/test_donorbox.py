"""The Donorbox emulator and the ``donorbox.donations`` source against Donorbox's documented API.

Donorbox publishes no formal spec: ``schemas/donorbox/donation.json`` is derived from the README's
two sample donations, and its ``x-list-endpoint`` lists the documented filters. One emulator,
wrapped in a :class:`Recorder`, is seeded with a donation in every state (paid by card and through
PayPal, recurring, refunded in full, partially refunded), then driven by the real source (paged,
from a start date, from a cursor, by campaign) and by direct requests for every filter, error and
fault. Every donation must have the documented keys and no other, every page must be the bare
array the README shows, every query parameter must be a documented one, and every route the
emulator declares must have been exercised. All of it runs under each of the emulator's switches
for what Donorbox leaves undocumented (the key set, the status a refund shows, the fault dialect).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import product
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from connectors.donorbox.donations import MAX_PER_PAGE, Donations, DonationSettings
from connectors.donorbox.emulator.app import create_app
from connectors.donorbox.emulator.store import DonorboxState, EmulatorSettings
from core.context import Context
from core.emulation import EmulatorServer
from core.http.client import USER_AGENT
from core.source import Unreadable
from core.state import SqliteStateStore
from tests.contracts.support import (
    SCHEMAS,
    Exchange,
    Recorder,
    api_routes,
    exercised,
    provoke_every_fault,
    violations,
)
from tests.receiver import receiving

EMAIL, KEY = "ops@example.org", "dbx-contract-key-0123"
DONATION = "donorbox/donation.json"
LIST = "/api/v1/donations"
PER_PAGE = 25
ORDINARY = 60  # with the named states, more than one page of the default 50
SWITCHES = [
    {"refund_status": r, "keys": k}
    for r, k in product(
        ("stays_paid", "refunded", "refunded_or_partially_refunded"),
        ("per_sample", "all_documented"),
    )
]
#: The status each named donation must show under each refund switch.
REFUND_STATUS = {
    "stays_paid": {"refunded": "paid", "partially_refunded": "paid"},
    "refunded": {"refunded": "refunded", "partially_refunded": "paid"},
    "refunded_or_partially_refunded": {
        "refunded": "refunded",
        "partially_refunded": "partially_refunded",
    },
}


def _documented_parameters() -> list[re.Pattern[str]]:
    """The list filters of ``x-list-endpoint``: "date_from / date_to" is two names, and
    ``amount[<currency>][min]`` stands for any currency code."""
    document = json.loads((SCHEMAS / DONATION).read_text())
    names = [
        name.strip()
        for entry in document["x-list-endpoint"]["query_parameters"]
        for name in entry.split("/")
    ]
    patterns = []
    for name in names:
        text = re.escape(name).replace(re.escape("<currency>"), "[a-z]{3}")
        patterns.append(re.compile(f"^{text}$"))
    return patterns


DOCUMENTED = _documented_parameters()
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d-%m-%Y")


@dataclass
class Traffic:
    recorder: Recorder
    app: Starlette
    named: dict[str, dict[str, Any]]
    read: list[dict[str, Any]]
    switches: dict[str, str]


@pytest.fixture(scope="module", params=SWITCHES, ids=lambda s: "-".join(s.values()))
def traffic(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traffic]:
    app = create_app(EmulatorSettings(credentials={EMAIL: KEY}, **request.param))
    state: DonorboxState = app.state.emulator
    named = state.seed_every_state()
    state.seed(count=ORDINARY)
    recorder = Recorder(app)
    folder = tmp_path_factory.mktemp("donorbox-contract")
    store = SqliteStateStore(folder / "state.db")
    context = Context("donorbox-contract", folder, store)
    try:
        with EmulatorServer(recorder) as server:
            read = _read_through_the_source(server.url, context, named)
            with httpx.Client(base_url=server.url, auth=(EMAIL, KEY), timeout=5) as api:
                _filters(api, state)
                _errors(api)
                _faults(api, state)
            yield Traffic(recorder, app, named, read, dict(request.param))
    finally:
        context.close()
        store.close()


# --- driving the emulator -----------------------------------------------------------------------


def _source(base: str, context: Context, **settings: Any) -> Donations:
    common = {"email": EMAIL, "api_key": KEY, "base_url": base, "per_page": PER_PAGE}
    return Donations(DonationSettings.model_validate(common | settings), context)


def _read_through_the_source(
    base: str, context: Context, named: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    source = _source(base, context)
    everything = list(source.read(None))
    assert not [r for r in everything if isinstance(r, Unreadable)]
    assert len(everything) == len(named) + ORDINARY
    records = [r for r in everything if isinstance(r, dict)]
    cursor = max(source.cursor_value(r) or "" for r in records)
    assert list(source.read(cursor))  # from the last day read, less lookback_days
    start = named["refunded"]["donation_date"][:10]
    since = list(_source(base, context, start=start).read(None))
    assert {r["id"] for r in since if isinstance(r, dict)} >= {named["refunded"]["id"]}
    campaign = named["paid_stripe"]["campaign"]["id"]
    one = list(_source(base, context, campaign_id=campaign).read(None))
    assert {r["campaign"]["id"] for r in one if isinstance(r, dict)} == {campaign}
    return records


def _filters(api: httpx.Client, state: DonorboxState) -> None:
    """Every documented filter, each in a request of its own."""
    donation = next(iter(state.records.values()))
    donor, day = donation["donor"], date.fromisoformat(donation["donation_date"][:10])
    for params in (
        {},
        {"order": "desc"},
        {"per_page": MAX_PER_PAGE + 1},
        {"page": 2, "per_page": 10},
        {"email": donor["email"]},
        {"first_name": donor["first_name"], "last_name": donor["last_name"]},
        {"donor_id": donor["id"]},
        {"id": donation["id"]},
        {"campaign_name": donation["campaign"]["name"]},
        {"campaign_id": donation["campaign"]["id"]},
        {"amount[usd][min]": "20", "amount[usd][max]": "200"},
        *({"date_from": day.strftime(f), "date_to": day.strftime(f)} for f in DATE_FORMATS),
    ):
        assert api.get(LIST, params=params).status_code == 200, params
    fallback = api.get(LIST, params={"per_page": MAX_PER_PAGE + 1}).json()
    assert len(fallback) == state.settings.default_per_page  # README: falls back to the default


def _errors(api: httpx.Client) -> None:
    refused = [
        httpx.get(f"{api.base_url}{LIST}"),
        httpx.get(f"{api.base_url}{LIST}", auth=(EMAIL, "wrong")),
        httpx.get(f"{api.base_url}{LIST}", auth=("someone@example.org", KEY)),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert api.get(LIST, params={"per_page": "ten"}).status_code == 400


def _faults(api: httpx.Client, state: DonorboxState) -> None:
    faults = state.settings.faults
    for dialect in ("json", "html"):
        state.settings.errors = dialect  # type: ignore[assignment]
        provoke_every_fault(lambda: api.get(LIST).status_code, faults)
        state.fail_next.append(500)
        assert api.get(LIST).status_code == 500
    state.settings.errors = "json"


# --- the checks ---------------------------------------------------------------------------------


def _pages(traffic: Traffic) -> list[Exchange]:
    return [e for e in traffic.recorder.answered(200) if e.path == LIST]


def test_every_declared_route_was_exercised(traffic: Traffic) -> None:
    assert api_routes(traffic.app) - exercised(traffic.recorder, traffic.app) == set()


def test_every_page_is_a_bare_array_of_documented_donations(traffic: Traffic) -> None:
    pages = _pages(traffic)
    assert pages
    for exchange in pages:
        where = f"GET {exchange.path}?{exchange.query}"
        body = exchange.json()
        assert violations(body, DONATION, "donations_response") == [], where
        for donation in body:
            found = violations(donation, DONATION, "donation_documented_keys_only")
            assert found == [], (where, donation["id"], found[:5])
            assert "phone" not in donation["donor"]
        assert len(body) <= MAX_PER_PAGE


def test_every_request_uses_documented_parameters_only(traffic: Traffic) -> None:
    for exchange in traffic.recorder.exchanges:
        for name, value in exchange.query:
            assert any(p.match(name) for p in DOCUMENTED), (name, exchange.path)
            if name == "order":
                assert value in ("asc", "desc")
            elif name in ("date_from", "date_to"):
                assert _documented_date(value), value
    sent = [
        e for e in traffic.recorder.exchanges if e.request_headers.get("user-agent") == USER_AGENT
    ]
    assert sent
    for exchange in sent:
        query = dict(exchange.query)
        # The source never asks for more than Donorbox gives: over 100 falls back to 50, which
        # would look like a short last page and end the read early.
        assert 1 <= int(query["per_page"]) <= MAX_PER_PAGE
        assert query["order"] == "asc"
    queries = [dict(e.query) for e in sent]
    assert any(int(q["page"]) > 1 for q in queries)  # paged
    assert any("date_from" in q for q in queries)  # incremental
    assert any("campaign_id" in q for q in queries)


def _documented_date(text: str) -> bool:
    for fmt in DATE_FORMATS:
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            continue
        return True
    return False


def test_every_state_is_served_and_read(traffic: Traffic) -> None:
    by_id = {r["id"]: r for r in traffic.read}
    shows = REFUND_STATUS[traffic.switches["refund_status"]]
    for name, seeded in traffic.named.items():
        served = by_id[seeded["id"]]
        kind = name.replace("_paypal", "")
        assert served["status"] == shows.get(kind, "paid"), name
        refunded = float(served["amount_refunded"])
        assert (refunded > 0) == ("refunded" in name), name
        if name == "partially_refunded":
            assert 0 < refunded < float(served["amount"])
    assert any(r["recurring"] and r["first_recurring_donation"] for r in traffic.read)
    assert any(r["recurring"] and not r["first_recurring_donation"] for r in traffic.read)
    assert {r["donation_type"] for r in traffic.read} == {"stripe", "paypal"}
    card = by_id[traffic.named["paid_stripe"]["id"]]
    paypal = by_id[traffic.named["paid_paypal"]["id"]]
    assert card["stripe_charge_id"].startswith("ch_")
    assert paypal["paypal_transaction_id"]
    assert paypal.get("stripe_charge_id") is None


def test_every_error_is_in_a_rails_dialect(traffic: Traffic) -> None:
    errors = [e for e in traffic.recorder.answered() if e.status >= 400]
    assert {e.status for e in errors} >= {400, 401, 429, 500, 502, 503, 504}
    kinds = set()
    for exchange in errors:
        where = f"{exchange.path} -> {exchange.status}"
        kind = exchange.response_headers["content-type"].split(";")[0]
        kinds.add(kind)
        if exchange.status == 429:
            assert exchange.response_headers["retry-after"].isdigit(), where
        if kind == "application/json":
            body = exchange.json()
            assert isinstance(body.get("error"), str), where
            if exchange.status not in (400, 401):
                assert body["status"] == exchange.status, where
        else:
            assert kind in ("text/html", "text/plain"), where
    assert kinds == {"application/json", "text/html", "text/plain"}
    devise = [e.json() for e in errors if e.status == 401]
    assert all(b == {"error": "You need to sign in or sign up before continuing."} for b in devise)


def test_the_schema_has_no_donor_phone() -> None:
    """The contract the emulator is held to: a donation's donor has no phone."""
    document = json.loads((Path(__file__).parent / "schemas" / DONATION).read_text())
    assert "phone" not in document["$defs"]["donation_donor"]["properties"]
    assert document["$defs"]["donation_donor"]["x-not-documented"] == ["phone"]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: "-".join(s.values()))
def test_every_webhook_delivery_is_a_v1_payload_of_documented_donations(
    switches: dict[str, str],
) -> None:
    """What the emulator POSTs to a custom webhook (webhooks.md): a one-donation array with
    ``"action": "new"``, the donation keeping the documented keys, under each switch."""
    state = DonorboxState(EmulatorSettings(credentials={EMAIL: KEY}, **switches))
    with receiving() as receiver:
        state.subscribers.add(receiver.url, ["donation.created"], "dbx-contract-secret")
        named = state.seed_every_state()
        assert state.subscribers.deliverer.wait_idle(10)
        posts = receiver.posts()
    assert len(posts) == len(named)
    for delivery in posts:
        payload = json.loads(delivery.body)
        assert violations(payload, DONATION, "donations_response") == []
        (donation,) = payload
        assert donation["action"] == "new"
        assert violations(donation, DONATION, "donation_documented_keys_only") == []
        assert re.fullmatch(r"\d+,[0-9a-f]{64}", delivery.headers["donorbox-signature"])
