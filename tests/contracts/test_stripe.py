"""The Stripe emulator and the ``stripe.charges`` / ``stripe.refunds`` sources against Stripe's
published OpenAPI (``schemas/stripe/``, API 2023-08-16; sources in SOURCES.md).

One emulator, wrapped in a :class:`Recorder`, is seeded with a charge in every state (succeeded,
failed, pending, only authorized, captured later, refunded in full and in part, disputed; US
dollars, yen with no minor unit, dinars with three) and refunds in every status, then driven by
the real sources through the real stripe SDK and the central client (small pages, expansions,
``created`` windows), by the SDK directly for the routes the sources do not use (retrieve,
capture, refund, customers, balance transactions, events, paging backwards), and by direct
requests for every error and every fault. Every answer must keep its schema (the list envelope of
its operation, each object by its ``object``, each event's object by its type, every error),
every query parameter the SDK sent must be one Stripe declares (``params.json``), the emulator
must refuse any other, and every route the emulator declares must have been exercised, so a new
route is covered here too.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from pydantic import SecretStr
from starlette.routing import Route

from connectors.stripe.charges import ChargesSettings, ChargesSource
from connectors.stripe.emulator.app import EmulatorSettings, create_app
from connectors.stripe.emulator.params import DECLARED, DECLARED_FORM
from connectors.stripe.emulator.store import StripeStore
from connectors.stripe.refunds import RefundsSettings, RefundsSource
from connectors.stripe.service import stripe_client
from core.context import Context
from core.emulation import EmulatorServer, Faults
from core.source import Unreadable
from core.state import open_state
from core.webhooks import Delivery
from tests.contracts.support import SCHEMAS, Exchange, Recorder, api_routes, exercised, violations
from tests.receiver import receiving

KEY = "sk_test_contract_4eC39HqLyjWDarjtT1zdp7dc"
AUTH = {"Authorization": f"Bearer {KEY}"}
JAN_2025 = 1_735_689_600
DAY = 86_400
PARAMS = json.loads((SCHEMAS / "stripe" / "params.json").read_text())["operations"]
#: The ``$defs`` of ``list.json`` for each list operation's envelope (None: the generic one).
LISTS: dict[str, str | None] = {
    "/v1/charges": "ChargeList",
    "/v1/refunds": "APIMethodRefundList",
    "/v1/customers": "CustomerResourceCustomerList",
    "/v1/events": "NotificationEventList",
    "/v1/balance_transactions": "BalanceTransactionsList",
    "/v1/webhook_endpoints": None,  # not in the stored spec subset
}
RESOURCES = {"charge", "refund", "balance_transaction", "customer", "event", "webhook_endpoint"}
#: The SDK's parameters of the routes the stored spec subset does not cover (see SOURCES.md).
SDK_PARAMS: dict[str, Any] = {
    "/v1/webhook_endpoints": stripe.params.WebhookEndpointListParams,
    "/v1/webhook_endpoints/{id}": stripe.params.WebhookEndpointRetrieveParams,
}
#: What a webhook endpoint enables in this test.
ENABLED_EVENTS = ["charge.refunded", "refund.created", "charge.captured", "charge.refund.updated"]
#: What each fault switch makes the emulator answer.
FAULTS: dict[str, tuple[dict[str, Any], int | None]] = {
    "429 storm": ({"rate_limit_storm": 1, "storm_retry_after": 0}, 429),
    "500": ({"error_rate": 1.0, "error_statuses": [500]}, 500),
    "502": ({"error_rate": 1.0, "error_statuses": [502]}, 502),
    "503": ({"error_rate": 1.0, "error_statuses": [503]}, 503),
    "timeout": ({"timeout_rate": 1.0, "hang_seconds": 0.0}, 504),
    "dropped connection": ({"drop_rate": 1.0}, None),
    "lost response": ({"lost_response_rate": 1.0}, None),
}
#: Requests the spec refuses, each sent directly: (path, query, status it must get).
ERRORS: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/charges", {"limit": 101}, 400),
    ("/v1/charges", {"limit": "many"}, 400),
    ("/v1/charges", {"created[gtee]": 1}, 400),
    ("/v1/charges", {"starting_after": "ch_gone"}, 400),
    ("/v1/charges", {"expand[0]": "customer"}, 400),  # a list expands data.*
    ("/v1/charges", {"chrage": "ch_1"}, 400),
    ("/v1/refunds", {"customer": "cus_1"}, 400),
    ("/v1/charges/ch_gone", {}, 404),
    ("/v1/refunds/re_gone", {}, 404),
    ("/v1/customers/cus_gone", {}, 404),
    ("/v1/balance_transactions/txn_gone", {}, 404),
    ("/v1/events/evt_gone", {}, 404),
    ("/v1/nothing", {}, 404),
]


@dataclass
class Traffic:
    """What the emulator saw, split by who sent it."""

    recorder: Recorder
    driven: list[Exchange]  # by the sources and the SDK: every query must be declared
    undeclared: list[tuple[Exchange, str]]  # direct requests with a made-up parameter, its name
    errors: list[Exchange]  # direct requests the spec refuses
    faults: dict[str, Exchange]
    store: StripeStore
    records: dict[str, list[dict[str, Any]]]
    delivered: list[Delivery]  # the events the emulator POSTed to a webhook endpoint
    endpoint_secret: str


# --- seeding every state ---------------------------------------------------------------------


def seed(store: StripeStore) -> dict[str, dict[str, Any]]:
    """A charge in every state a donation can be in, with refunds in every status."""
    ada = {"name": "Ada Lovelace", "email": "ada@example.org", "address": {"city": "Phoenix"}}
    specs: dict[str, dict[str, Any]] = {
        "succeeded": {"amount": 2500, "customer": ada, "metadata": {"designation": "general"}},
        "failed": {"amount": 1000, "status": "failed"},
        "pending": {"amount": 5000, "status": "pending", "payment_method_type": "us_bank_account"},
        "uncaptured": {"amount": 7000, "captured": False},
        "captured_later": {"amount": 8000, "captured": False, "customer": ada},
        "refunded": {"amount": 3000, "refunds": [{"reason": "requested_by_customer"}]},
        "partially_refunded": {"amount": 4000, "refunds": [{"amount": 1500}]},
        "disputed": {"amount": 6000, "disputed": True},
        "jpy": {"amount": 1500, "currency": "jpy", "customer": {"name": "Katherine Johnson"}},
        "kwd": {"amount": 12345, "currency": "kwd", "refunds": [{"amount": 345}]},
        "refund_pending": {"amount": 900, "refunds": [{"amount": 100, "status": "pending"}]},
        "refund_failed": {"amount": 800, "refunds": [{"amount": 100, "status": "failed"}]},
        "refund_canceled": {"amount": 700, "refunds": [{"amount": 100, "status": "canceled"}]},
        "refund_action": {"amount": 600, "refunds": [{"amount": 100, "status": "requires_action"}]},
    }
    made = {}
    for index, (name, spec) in enumerate(specs.items()):
        created = JAN_2025 + index * 5 * DAY  # across months: several created windows
        refunds = [{**r, "created": created + DAY} for r in spec.pop("refunds", [])]
        made[name] = store.seed_charge({**spec, "created": created, "refunds": refunds})
    return made


# --- driving it ------------------------------------------------------------------------------


def context(tmp: Path) -> Context:
    return Context("stripe-contract", tmp, open_state(tmp / "state.db"))


def read(source_class: Any, settings_class: Any, url: str, tmp: Path, **settings: Any) -> list[Any]:
    values = {"api_key": KEY, "base_url": url, "start": JAN_2025, "page_size": 2, **settings}
    source = source_class(settings_class.model_validate(values), context(tmp))
    try:
        return list(source.read(None))
    finally:
        source.context.close()


def through_the_sources(url: str, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    """The real sources, every status, every expansion, small pages and 30-day windows."""
    charges = read(
        ChargesSource,
        ChargesSettings,
        url,
        tmp,
        statuses=None,
        uncaptured=True,
        expand_customer=True,
    )
    refunds = read(RefundsSource, RefundsSettings, url, tmp, statuses=None)
    assert not [r for r in [*charges, *refunds] if isinstance(r, Unreadable)]
    return {"charges": charges, "refunds": refunds}


def through_the_sdk(url: str, tmp: Path, made: dict[str, dict[str, Any]], hook_url: str) -> str:
    """The SDK, through the central client, on every route the sources leave out; a webhook
    endpoint at ``hook_url`` sees the events of the capture and the refund. Its secret."""
    ctx = context(tmp)
    client = stripe_client(SecretStr(KEY), url, ctx)
    try:
        v1 = client.v1
        endpoint = v1.webhook_endpoints.create(
            params={"url": hook_url, "enabled_events": ENABLED_EVENTS, "description": "contract"}
        )
        later = made["captured_later"]["id"]
        v1.charges.capture(later, params={"expand": ["balance_transaction"]})
        charge = v1.charges.retrieve(made["succeeded"]["id"], params={"expand": ["customer"]})
        v1.refunds.create(params={"charge": made["jpy"]["id"], "amount": 500})
        (refund,) = v1.refunds.list(params={"charge": made["refunded"]["id"]}).data
        v1.refunds.retrieve(refund.id, params={"expand": ["charge"]})
        v1.balance_transactions.retrieve(
            str(charge.balance_transaction), params={"expand": ["source"]}
        )
        customers = v1.customers.list(params={"email": "ada@example.org", "limit": 1})
        v1.customers.retrieve(customers.data[0].id)
        oldest = made["succeeded"]["id"]
        backwards = v1.charges.list(params={"ending_before": oldest, "limit": 3})
        assert len(list(backwards.auto_paging_iter())) == len(made) - 1
        window = {"gt": JAN_2025, "lte": JAN_2025 + 20 * DAY}
        v1.charges.list(params={"created": window, "customer": customers.data[0].id})
        v1.charges.list(params={"created": JAN_2025, "payment_intent": charge.payment_intent})
        v1.refunds.list(params={"charge": made["kwd"]["id"], "expand": ["data.charge"]})
        events = v1.events.list(params={"types": ["charge.refunded", "charge.captured"]})
        v1.events.list(params={"type": "charge.*", "limit": 3})
        v1.events.retrieve(events.data[0].id)
        # The bank's answer to a pending refund (the control plane stands in for it).
        pending = made["refund_pending"]["id"]
        (settling,) = v1.refunds.list(params={"charge": pending}).data
        httpx.post(f"{url}/_emulator/refunds/{settling.id}/status", json={"status": "failed"})
        listed = v1.webhook_endpoints.list(params={"limit": 1})
        assert [e.id for e in listed.data] == [endpoint.id]
        assert "secret" not in listed.data[0].to_dict()  # shown once, at creation
        v1.webhook_endpoints.retrieve(endpoint.id)
        other = v1.webhook_endpoints.create(params={"url": hook_url, "enabled_events": ["*"]})
        v1.webhook_endpoints.delete(other.id)
        return str(endpoint.secret)
    finally:
        ctx.close()


def send(url: str, path: str, query: dict[str, Any] | None = None) -> None:
    # A dropped connection or a lost answer raises; the recorder saw the request all the same.
    with contextlib.suppress(httpx.TransportError):
        httpx.get(f"{url}{path}", params=query or {}, headers=AUTH, timeout=5)


def faulted(url: str, faults: Faults, recorder: Recorder) -> dict[str, Exchange]:
    """One request under each fault switch, and the SDK's verdict on each answer."""
    seen = {}
    for name, (switches, status) in FAULTS.items():
        faults.update(**switches)
        send(url, "/v1/charges")
        seen[name] = recorder.exchanges[-1]
        faults.clear()
        if status is not None:
            faults.update(**switches)
            client = stripe.StripeClient(KEY, base_addresses={"api": url})
            with pytest.raises(stripe.RateLimitError if status == 429 else stripe.APIError):
                client.v1.charges.list()
            faults.clear()
    return seen


def undeclared(url: str, recorder: Recorder) -> list[tuple[Exchange, str]]:
    """A made-up parameter on every GET route, and one with brackets on every list."""
    sent = []
    for route, declared in DECLARED.items():
        send(url, route.replace("{id}", "x_1"), {"not_a_parameter": 1})
        sent.append((recorder.exchanges[-1], "not_a_parameter"))
        if "limit" in declared:
            send(url, route, {"limit": 1, "expand[0]": "data.id", "bogus[gte]": 1})
            sent.append((recorder.exchanges[-1], "bogus"))
    return sent


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    app = create_app(EmulatorSettings(api_keys=[KEY]))
    recorder = Recorder(app)
    made = seed(app.state.store)
    tmp = tmp_path_factory.mktemp("stripe-contract")
    with EmulatorServer(recorder) as server, receiving() as receiver:
        records = through_the_sources(server.url, tmp)
        secret = through_the_sdk(server.url, tmp, made, receiver.url)
        assert app.state.store.deliverer.wait_idle(10)
        driven = list(recorder.exchanges)
        refused = undeclared(server.url, recorder)
        before = len(recorder.exchanges)
        for path, query, _ in ERRORS:
            send(server.url, path, query)
        errors = recorder.exchanges[before:]
        faults = faulted(server.url, app.state.settings.faults, recorder)
    store = app.state.store
    delivered = receiver.posts()
    return Traffic(recorder, driven, refused, errors, faults, store, records, delivered, secret)


# --- the checks ------------------------------------------------------------------------------


def route_of(exchange: Exchange, app: Any) -> str | None:
    """The path template of the emulator route ``exchange`` matched, if any."""
    scope = {"type": "http", "path": exchange.path, "method": exchange.method}
    for route in app.routes:
        if isinstance(route, Route) and route.matches(scope)[0].name == "FULL":
            return str(route.path)
    return None


def spec_operation(route: str) -> dict[str, Any]:
    """The ``params.json`` operation of an emulator GET route (``{id}`` names differ); for a
    route the stored subset does not cover, the same facts from the SDK's parameters."""
    shape = re.sub(r"\{[^}]+\}", "{}", route)
    for name, operation in PARAMS.items():
        method, path = name.split(" ", 1)
        if method == "GET" and re.sub(r"\{[^}]+\}", "{}", path) == shape:
            return dict(operation)
    if route in SDK_PARAMS:
        return sdk_operation(SDK_PARAMS[route])
    raise AssertionError(f"Stripe's spec declares no GET {route}")


def sdk_operation(params: Any) -> dict[str, Any]:
    """A params.json-like operation from an SDK ``*Params`` TypedDict: its names (the request
    options every params class inherits aside) and the form-encoded keys they can produce."""
    names = sorted(_keys(params) - _keys(stripe.RequestOptions))
    pattern = "^(" + "|".join(map(re.escape, names)) + r")(\[[^\]]*\])*$"
    return {"query_parameters": names, "wire_key_pattern": pattern}


def _keys(typed_dict: Any) -> set[str]:
    return set(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


def resource_problems(obj: dict[str, Any], where: str) -> list[str]:
    """``obj`` against its resource's contract, and an event's object against its own."""
    kind = obj.get("object")
    if kind not in RESOURCES:
        return [f"{where}: an object of unknown kind {kind!r}"]
    deleted = f"deleted_{kind}" if obj.get("deleted") else None
    problems = [f"{where}{p}" for p in violations(obj, f"stripe/{kind}.json", deleted)]
    if kind == "event":
        inner = obj["data"]["object"]
        problems += resource_problems(inner, f"{where}.data.object")
        # charge.refund.updated holds the refund; every other charge.* event a charge.
        kind = obj["type"].split(".", 1)[0]
        prefix = "refund" if obj["type"].startswith("charge.refund.") else kind
        if inner.get("object") != prefix:
            problems.append(f"{where}: a {obj['type']} event holds a {inner.get('object')}")
    return problems


#: The stripe SDK's class of each resource: its fields are those of the API it pins (2026).
SDK_CLASSES: dict[str, type[Any]] = {
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "balance_transaction": stripe.BalanceTransaction,
    "customer": stripe.Customer,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
}


def _document(kind: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / "stripe" / f"{kind}.json").read_text()))


def _object_schema(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema behind ``node`` ($ref, or the object branch of an anyOf), if any."""
    if "$ref" in node:
        return _object_schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    for branch in node.get("anyOf", []):
        found = _object_schema(branch, defs)
        if found is not None:
            return found
    return node if "properties" in node else None


def _sdk_fields(cls: type[Any] | None) -> set[str]:
    if cls is None:
        return set()
    return {name for klass in cls.__mro__ for name in getattr(klass, "__annotations__", {})}


def _resource(value: dict[str, Any]) -> bool:
    return isinstance(value.get("object"), str) and value["object"] in SDK_CLASSES


def invented(
    obj: Any, node: dict[str, Any] | None, defs: dict[str, Any], sdk: Any, where: str
) -> list[str]:
    """Keys of ``obj`` that neither the 2023 spec nor the pinned SDK knows (objects are open in
    the schemas, so validation alone lets an invented field through)."""
    if not isinstance(obj, dict) or node is None or "properties" not in node:
        return []
    known = set(node["properties"]) | _sdk_fields(sdk)
    problems = [f"{where}.{key}: in neither the spec nor the SDK" for key in set(obj) - known]
    inner = getattr(sdk, "_inner_class_types", {}) if sdk is not None else {}
    for key, value in obj.items():
        if not isinstance(value, dict) or key not in node["properties"] or _resource(value):
            continue  # an expanded resource, or an event's data.object: checked as itself
        child = _object_schema(node["properties"][key], defs)
        problems += invented(value, child, defs, inner.get(key), f"{where}.{key}")
    return problems


def strict_problems(obj: dict[str, Any], where: str) -> list[str]:
    kind = obj.get("object")
    if kind not in SDK_CLASSES:
        return []
    document = _document(str(kind))
    defs = document.get("$defs", {})
    problems = invented(obj, _object_schema(document, defs), defs, SDK_CLASSES[kind], where)
    for key, value in obj.items():
        if isinstance(value, dict) and _resource(value):
            problems += strict_problems(value, f"{where}.{key}")
    if kind == "event":
        problems += strict_problems(obj["data"]["object"], f"{where}.data.object")
    return problems


def body_problems(exchange: Exchange, app: Any) -> list[str]:
    where = f"{exchange.method} {exchange.path} -> {exchange.status}"
    body = exchange.json()
    if exchange.status >= 400:
        return [f"{where} {p}" for p in violations(body, "stripe/error.json")]
    route = route_of(exchange, app)
    if route in LISTS and exchange.method == "GET":
        problems = [f"{where} {p}" for p in violations(body, "stripe/list.json", LISTS[route])]
        for index, item in enumerate(body["data"]):
            problems += resource_problems(item, f"{where} $.data[{index}]")
        return problems
    return resource_problems(body, f"{where} $")


def test_every_answer_keeps_stripes_published_schemas(traffic: Traffic) -> None:
    answered = [e for e in traffic.recorder.answered() if e.status != 0]
    assert len(answered) > 60
    problems = [p for e in answered for p in body_problems(e, traffic.recorder)]
    assert problems == []


def test_every_state_was_served_and_read(traffic: Traffic) -> None:
    """The seeding reached the wire: every status, currency and flag the contract allows."""
    served = [
        item
        for e in traffic.driven
        if e.status == 200 and isinstance(e.json().get("data"), list)
        for item in e.json()["data"]
    ]
    charges = [c for c in served if c["object"] == "charge"]
    assert {c["status"] for c in charges} == {"succeeded", "failed", "pending"}
    assert {c["currency"] for c in charges} == {"usd", "jpy", "kwd"}
    assert any(not c["captured"] and c["status"] == "succeeded" for c in charges)
    assert any(c["refunded"] for c in charges)
    assert any(0 < c["amount_refunded"] < c["amount"] for c in charges)
    assert any(c["disputed"] for c in charges)
    refunds = [r for r in served if r["object"] == "refund"]
    assert {r["status"] for r in refunds} == {
        "succeeded",
        "pending",
        "failed",
        "canceled",
        "requires_action",
    }
    assert any(isinstance(c["balance_transaction"], dict) for c in charges)  # expanded
    assert any(isinstance(c["customer"], dict) for c in charges)
    assert any(isinstance(r["charge"], dict) for r in refunds)
    assert any("starting_after" in dict(e.query) for e in traffic.driven)  # paged
    read = traffic.records
    assert {r["status"] for r in read["charges"]} == {"succeeded", "failed", "pending"}
    assert len(read["refunds"]) == len(traffic.store.refunds) - 1  # one made after the read
    assert all(isinstance(r["charge"], dict) for r in read["refunds"])


def test_every_query_the_sdk_sent_is_one_stripe_declares(traffic: Traffic) -> None:
    problems = []
    for exchange in traffic.driven:
        if exchange.method != "GET":
            continue
        route = route_of(exchange, traffic.recorder)
        assert route is not None, exchange.path
        pattern = re.compile(spec_operation(route)["wire_key_pattern"])
        problems += [
            f"{exchange.path}: {key}" for key, _ in exchange.query if not pattern.fullmatch(key)
        ]
    assert problems == []
    keys = {key for e in traffic.driven for key, _ in e.query}
    assert {"created[gte]", "created[lt]", "created[gt]", "created[lte]", "created"} <= keys
    assert {"expand[0]", "limit", "starting_after", "ending_before", "types[0]"} <= keys


def test_any_other_parameter_is_refused_as_stripe_refuses_it(traffic: Traffic) -> None:
    assert len(traffic.undeclared) == len(DECLARED) + len(LISTS) - 1  # no list of transactions
    for exchange, name in traffic.undeclared:
        assert exchange.status == 400, exchange.path
        assert exchange.json()["error"] == {
            "type": "invalid_request_error",
            "message": f"Received unknown parameter: {name}",
            "code": "parameter_unknown",
            "param": name,
        }


def test_the_emulator_declares_what_the_spec_declares(traffic: Traffic) -> None:
    """The emulator's own list of parameters is Stripe's, operation by operation."""
    for route, declared in DECLARED.items():
        assert set(spec_operation(route)["query_parameters"]) == declared, route
    served = {path for method, path in api_routes(traffic.recorder) if method == "GET"}
    assert served == set(DECLARED)
    create = stripe.params.WebhookEndpointCreateParams
    assert DECLARED_FORM["/v1/webhook_endpoints"] == _keys(create) - _keys(stripe.RequestOptions)


def test_every_event_delivered_keeps_its_schema_and_is_signed_as_stripe_signs(
    traffic: Traffic,
) -> None:
    """The capture and the refund reached the endpoint that enabled their events (and nothing
    else did), each a Stripe event whose object keeps its resource's schema, and each passes the
    SDK's own signature check with the secret the endpoint was created with."""
    kinds = sorted(json.loads(d.body)["type"] for d in traffic.delivered)
    expected = ["charge.captured", "charge.refunded", "refund.created", "charge.refund.updated"]
    assert kinds == sorted(expected)
    for delivery in traffic.delivered:
        header = delivery.headers["stripe-signature"]
        event = stripe.Webhook.construct_event(delivery.body, header, traffic.endpoint_secret)
        body = json.loads(delivery.body)
        assert resource_problems(body, "$") == []
        assert strict_problems(body, "$") == []
        assert body["pending_webhooks"] == 1
        assert event.id == body["id"]
        assert body["id"] in traffic.store.events


def test_errors_are_stripes_envelope_with_stripes_statuses(traffic: Traffic) -> None:
    statuses = [e.status for e in traffic.errors]
    assert statuses == [status for _, _, status in ERRORS]
    for exchange in traffic.errors:
        assert violations(exchange.json(), "stripe/error.json") == []
        assert exchange.response_headers["request-id"].startswith("req_")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_answers_in_stripes_dialect(traffic: Traffic, fault: str) -> None:
    exchange = traffic.faults[fault]
    status = FAULTS[fault][1]
    assert exchange.status == (status or 0)
    if status is None:
        assert exchange.response_body == b""  # the connection closed with no answer
        return
    assert violations(exchange.json(), "stripe/error.json") == []
    error = exchange.json()["error"]
    assert error["type"] == ("invalid_request_error" if status == 429 else "api_error")


def test_every_declared_route_was_exercised(traffic: Traffic) -> None:
    assert api_routes(traffic.recorder) - exercised(traffic.recorder, traffic.recorder) == set()


def test_no_answer_holds_a_field_stripe_does_not_have(traffic: Traffic) -> None:
    """Each key of each object is in Stripe's 2023 spec or in the SDK of the API the project
    pins (fields added since, such as a refund's ``destination_details``)."""
    problems = []
    for exchange in traffic.recorder.answered(200):
        body = exchange.json()
        items = body["data"] if body.get("object") == "list" else [body]
        for index, item in enumerate(items):
            problems += strict_problems(item, f"{exchange.path}[{index}]")
    assert problems == []


def test_the_checks_catch_a_broken_answer() -> None:
    """The checks above would see a difference: a charge without amount, a bad status, an
    error without its envelope, a list without url."""
    charge: dict[str, Any] = {"id": "ch_1", "object": "charge", "status": "refunded"}
    assert any("amount" in p for p in resource_problems(charge, "$"))
    assert any("status" in p for p in resource_problems(charge, "$"))
    assert violations({"message": "Too many requests."}, "stripe/error.json") != []
    page = {"object": "list", "data": [], "has_more": False}
    assert violations(page, "stripe/list.json", "ChargeList") != []
    made_up = {"id": "ch_1", "object": "charge", "billing_details": {"nickname": "Ada"}}
    assert strict_problems({**made_up, "gift_aid": True}, "$") != []
    assert strict_problems(made_up, "$") == [
        "$.billing_details.nickname: in neither the spec nor the SDK"
    ]
    with pytest.raises(AssertionError, match="declares no GET"):
        spec_operation("/v1/payouts/{id}/reverse")
