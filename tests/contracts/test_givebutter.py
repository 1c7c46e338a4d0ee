"""The Givebutter emulator and the ``givebutter.transactions`` source against Givebutter's
published OpenAPI (``schemas/givebutter/``, sources in SOURCES.md).

One emulator, wrapped in a :class:`Recorder`, is seeded with a transaction in every state
(succeeded, failed, authorized, cancelled, refunded in full and in part, recurring, a check
received and one not yet received) plus enough ordinary ones to page, then driven by the real
source through the CLI (paged, incremental after refunds, from a start date with a scope) and by
direct requests for every declared filter, every error and every fault. Every answer must keep
its schema (the page, the list item, the errors), every query parameter must be a declared one,
and every route the emulator declares must have been exercised, so a new route is covered here
too. All of it runs under each of the emulator's switches for what Givebutter leaves unpublished:
how a partial refund shows.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.routing import Route

from connectors.givebutter.emulator.app import EmulatorSettings, GivebutterState, create_app
from connectors.givebutter.emulator.shapes import KINDS, PARTIAL_REFUNDS
from core.cli import Session, with_plugin_commands
from core.emulation import EmulatorServer
from core.http.client import USER_AGENT
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

KEY = "gb-contract-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
PAGE, ITEM = "givebutter/transactions_page.json", "givebutter/transaction.json"
#: The events ``POST /v1/webhooks`` accepts, from the table of webhook_events.md.
_EVENTS_TABLE = (SCHEMAS / "givebutter" / "webhook_events.md").read_text()
PUBLISHED_EVENTS = set(re.findall(r"^\| `([a-z_.]+)` \|", _EVENTS_TABLE, re.M))
LIST, ONE = "/v1/transactions", "/v1/transactions/{tid}"
WEBHOOK = "givebutter/webhook.json"
HOOKS, HOOK = "/v1/webhooks", "/v1/webhooks/{wid}"
ORDINARY = 23  # with the named states, several pages of PER_PAGE
PER_PAGE = 10
PAGING = {"page", "per_page"}  # not declared by the operation, but its own links use ?page=N

RECIPE = """\
version: 1
name: givebutter-contract
source:
  use: givebutter.transactions
  with: {api_key: "${GB_KEY}", base_url: "${GB_URL}", per_page: PER_PAGE EXTRA}
sink: {use: file.jsonl, with: {path: OUT}}
"""

#: ``x-error-responses`` of transactions_page.json, as schemas.
VALIDATION_ERROR = {
    "type": "object",
    "required": ["message", "errors"],
    "properties": {
        "message": {"type": "string"},
        "errors": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}
MESSAGE_ONLY = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string", "minLength": 1}},
}


def _declared() -> dict[str, dict[str, Any]]:
    document = json.loads((SCHEMAS / PAGE).read_text())
    return {p["name"]: p["schema"] for p in document["x-query-parameters"]}


DECLARED = _declared()


@dataclass
class Traffic:
    recorder: Recorder
    app: Starlette
    named: dict[str, dict[str, Any]]
    read: list[dict[str, Any]]
    partial_refunds: str


@pytest.fixture(scope="module", params=PARTIAL_REFUNDS)
def traffic(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traffic]:
    app = create_app(EmulatorSettings(api_keys=[KEY], partial_refunds=request.param))
    state: GivebutterState = app.state.emulator
    named = dict(zip(KINDS, state.seed_kinds(*KINDS), strict=True))
    state.seed(count=ORDINARY)
    recorder = Recorder(app)
    folder = tmp_path_factory.mktemp("givebutter-contract")
    with pytest.MonkeyPatch.context() as env, EmulatorServer(recorder) as server:
        env.setenv("GB_KEY", KEY)
        env.setenv("GB_URL", server.url)
        env.setenv("CONNECTOR_DISABLE_PLUGIN_AUTOLOAD", "1")
        env.setenv("CONNECTOR_LOCK_DIR", str(folder / "locks"))
        read = _read_through_the_cli(folder, state, named)
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as api:
            _filters(api, named)
            _errors(api)
            _webhooks(api)
            _faults(api, state)
        yield Traffic(recorder, app, named, read, request.param)


# --- driving the emulator -----------------------------------------------------------------------


def _run(folder: Path, name: str, extra: str = "") -> list[dict[str, Any]]:
    """Run a recipe reading ``givebutter.transactions`` into a JSONL file: what it wrote."""
    out = folder / f"{name}.jsonl"
    recipe = folder / f"{name}.yaml"
    text = RECIPE.replace("PER_PAGE", str(PER_PAGE)).replace("OUT", str(out))
    recipe.write_text(text.replace(" EXTRA", extra))
    session = Session()
    args = ["run", str(recipe), "--json", "--state", str(folder / f"{name}.db")]
    result = CliRunner().invoke(with_plugin_commands(session), args, obj=session)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def _read_through_the_cli(
    folder: Path, state: GivebutterState, named: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    everything = _run(folder, "all")
    assert len(everything) == len(named) + ORDINARY
    # Refunds after the first read: the incremental run (updatedAfter) sees them.
    ordinary = [r for r in state.records.values() if r not in named.values()]
    state.refund(ordinary[0]["id"])
    state.refund(ordinary[1]["id"], amount=1)
    changed = {r["id"] for r in _run(folder, "all")[len(everything) :]}
    assert changed == {ordinary[0]["id"], ordinary[1]["id"]}
    start = named["check"]["created_at"][:10]
    since = _run(folder, "since", f", start: {start}, scope: all")
    assert named["check"]["id"] in {r["id"] for r in since}
    return everything


def _filters(api: httpx.Client, named: dict[str, dict[str, Any]]) -> None:
    """Every declared parameter, with a value of its declared type, and GET by id."""
    check = named["check"]
    moment = check["created_at"]
    for name, schema in DECLARED.items():
        if schema.get("format") == "date-time":
            values = [moment]
        elif "enum" in schema:
            values = [v for v in schema["enum"] if v is not None]
        elif name == "contacts":
            values = [f"{check['contact_id']},0"]
        else:
            values = ["check"]
        for value in values:
            assert api.get(LIST, params={name: value}).status_code == 200, (name, value)
    deposited = api.get(LIST, params={"checkDepositedAfter": "2000-01-01T00:00:00Z"}).json()
    assert {r["id"] for r in deposited["data"]} == {check["id"]}
    for record in named.values():
        assert api.get(f"{LIST}/{record['id']}").json()["id"] == record["id"]


def _errors(api: httpx.Client) -> None:
    expected = [
        httpx.get(f"{api.base_url}{LIST}"),  # no key
        httpx.get(f"{api.base_url}{LIST}", headers={"Authorization": "Bearer wrong"}),
        api.get(f"{LIST}/nope"),
        api.get(LIST, params={"per_page": 101}),
        api.get(LIST, params={"page": "two"}),
        api.get(LIST, params={"updatedAfter": "last week"}),
        api.get(LIST, params={"sortBy": "fee"}),
        api.get(LIST, params={"scope": "mine"}),
    ]
    assert [r.status_code for r in expected] == [401, 401, 404] + [422] * 5


def _webhooks(api: httpx.Client) -> None:
    """Every webhook operation, with bodies the spec accepts and ones it refuses."""
    body = {"url": "https://hooks.example.org/gb?secret=s", "events": ["transaction.succeeded"]}
    made = api.post(HOOKS, json={**body, "name": "connector"}).json()
    single = api.post(HOOKS, json={"url": "https://hooks.example.org/b", "event": "refund.created"})
    assert single.json()["events"] == ["refund.created"]
    assert api.get(HOOKS, params={"per_page": 1}).json()["links"]["next"] is not None
    assert api.get(f"{HOOKS}/{made['id']}").json() == made
    changed = {**body, "events": ["refund.created"], "enabled": False}
    assert api.put(f"{HOOKS}/{made['id']}", json=changed).json()["enabled"] is False
    assert api.delete(f"{HOOKS}/{single.json()['id']}").status_code == 200
    refused = [
        api.post(HOOKS, json={"events": ["transaction.succeeded"]}),  # no url
        api.post(HOOKS, json={**body, "events": ["transaction.refunded"]}),  # not in the enum
        api.post(HOOKS, json={**body, "name": "x" * 256}),
        api.put(f"{HOOKS}/{made['id']}", json={"url": body["url"]}),  # update needs events
    ]
    assert [r.status_code for r in refused] == [422] * 4
    missing = [api.get(f"{HOOKS}/nope"), api.put(f"{HOOKS}/nope", json=body)]
    missing.append(api.delete(f"{HOOKS}/nope"))
    assert [r.status_code for r in missing] == [404] * 3


def _faults(api: httpx.Client, state: GivebutterState) -> None:
    faults = state.settings.faults
    provoke_every_fault(lambda: api.get(LIST).status_code, faults)
    state.fail_next.append(500)
    assert api.get(LIST).status_code == 500
    # Past the per-minute limit: Laravel's throttle answer.
    limit = state.settings.requests_per_minute
    state.settings.requests_per_minute = 1
    assert api.get(LIST).status_code == 429
    state.settings.requests_per_minute = limit


# --- the checks ---------------------------------------------------------------------------------


def _relaxed(name: str) -> Draft202012Validator:
    """Schema ``name`` with ``transactions`` allowed more than one entry. Only for the
    ``refund_entry`` switch, which is the possibility that Givebutter shows a partial refund as a
    second entry, against the published ``maxItems: 1``: if real data ever shows it, the
    published schema is what is wrong (its own description says to relax it then)."""
    document = copy.deepcopy(json.loads((SCHEMAS / name).read_text()))
    nested = document["$defs"]["transaction_list_item"]["properties"]["transactions"]
    for keyword in ("prefixItems", "maxItems"):
        nested.pop(keyword)
    nested["items"] = {"$ref": "#/$defs/transaction_entry"}
    return Draft202012Validator(document)


def _violations(body: Any, name: str, partial_refunds: str) -> list[str]:
    if partial_refunds != "refund_entry":
        return violations(body, name)
    return sorted(f"{e.json_path}: {e.message}" for e in _relaxed(name).iter_errors(body))


def _route(app: Starlette, exchange: Exchange) -> str | None:
    scope = {"type": "http", "path": exchange.path, "method": exchange.method}
    for route in app.routes:
        if isinstance(route, Route) and route.matches(scope)[0].name == "FULL":
            return f"{exchange.method} {route.path}"
    return None


def test_every_declared_route_was_exercised(traffic: Traffic) -> None:
    assert api_routes(traffic.app) - exercised(traffic.recorder, traffic.app) == set()


def test_every_page_and_transaction_keeps_its_contract(traffic: Traffic) -> None:
    checked = {LIST: 0, ONE: 0}
    for exchange in traffic.recorder.answered(200):
        route = _route(traffic.app, exchange)
        where = f"{exchange.method} {exchange.path}?{exchange.query}"
        if route == f"GET {LIST}":
            found = _violations(exchange.json(), PAGE, traffic.partial_refunds)
            checked[LIST] += 1
        elif route == f"GET {ONE}":
            found = _violations(exchange.json(), ITEM, traffic.partial_refunds)
            checked[ONE] += 1
        else:
            continue
        assert found == [], (where, found[:5])
    assert checked[LIST] > 0
    assert checked[ONE] >= len(KINDS)


def test_every_webhook_answer_and_request_keeps_the_published_schema(traffic: Traffic) -> None:
    checked = 0
    for exchange in traffic.recorder.exchanges:
        route = _route(traffic.app, exchange)
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        if route == f"POST {HOOKS}" and exchange.status == 200:
            assert violations(exchange.request_json(), WEBHOOK, "store_body") == [], where
        if route == f"PUT {HOOK}" and exchange.status == 200:
            assert violations(exchange.request_json(), WEBHOOK, "update_body") == [], where
        if exchange.status != 200 or route not in (f"GET {HOOKS}", f"POST {HOOKS}", f"GET {HOOK}"):
            continue
        definition = "webhooks_page" if route == f"GET {HOOKS}" else "WebhookResource"
        assert violations(exchange.json(), WEBHOOK, definition) == [], where
        checked += 1
    assert checked >= 4


def test_every_error_and_fault_speaks_laravel(traffic: Traffic) -> None:
    errors = [e for e in traffic.recorder.answered() if e.status >= 400]
    assert {e.status for e in errors} >= {401, 404, 422, 429, 500, 502, 503, 504}
    for exchange in errors:
        where = f"{exchange.method} {exchange.path}?{exchange.query} -> {exchange.status}"
        assert exchange.response_headers["content-type"].startswith("application/json"), where
        schema = VALIDATION_ERROR if exchange.status == 422 else MESSAGE_ONLY
        assert list(Draft202012Validator(schema).iter_errors(exchange.json())) == [], where
    storms = [e for e in errors if e.status == 429]
    assert all(e.json() == {"message": "Too Many Attempts."} for e in storms)
    assert all("retry-after" in e.response_headers for e in storms)


def test_every_query_parameter_is_a_declared_one(traffic: Traffic) -> None:
    allowed = set(DECLARED) | PAGING
    for exchange in traffic.recorder.exchanges:
        if exchange.path == LIST:
            names = {name for name, _ in exchange.query}
            assert names <= allowed, (exchange.query, names - allowed)


def test_what_the_source_sends_has_the_declared_types(traffic: Traffic) -> None:
    sent = [
        e
        for e in traffic.recorder.exchanges
        if e.path == LIST and e.request_headers.get("user-agent") == USER_AGENT
    ]
    seen: set[str] = set()
    for exchange in sent:
        for name, value in exchange.query:
            seen.add(name)
            schema = DECLARED.get(name)
            if name in PAGING:
                assert int(value) >= 1, (name, value)
            elif schema is not None and "enum" in schema:
                assert value in schema["enum"], (name, value)
            elif schema is not None and schema.get("format") == "date-time":
                assert datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo, value
    # The source's paging, incremental read, sort and scope were all on the wire.
    assert seen >= {"page", "per_page", "sortBy", "updatedAfter", "scope"}


def test_every_state_was_read_through_the_source_in_its_published_shape(
    traffic: Traffic,
) -> None:
    read = {r["id"]: r for r in traffic.read}
    for kind, record in traffic.named.items():
        assert read[record["id"]] == record, kind  # passed on as Givebutter sent it
    assert {r["status"] for r in traffic.read} == {"succeeded", "authorized", "failed", "cancelled"}
    entries = [r["transactions"][0] for r in traffic.read]
    assert {e["refunded"] for e in entries} == {True, False}
    assert {e["captured"] for e in entries} == {True, False}
    assert any(r["is_recurring"] for r in traffic.read)
    assert any(r["check_number"] for r in traffic.read)


@pytest.mark.parametrize("partial_refunds", PARTIAL_REFUNDS)
def test_every_webhook_delivery_carries_a_transaction_in_its_published_shape(
    partial_refunds: str,
) -> None:
    """What the emulator POSTs to a webhook: an event Givebutter's spec lists, around the
    transaction as ``GET /v1/transactions`` shows it (no envelope is published)."""
    state = GivebutterState(EmulatorSettings(api_keys=[KEY], partial_refunds=partial_refunds))
    with receiving() as receiver:
        state.subscribers.add(f"{receiver.url}?secret=s")
        made = state.seed_kinds(*KINDS)
        state.refund(made[0]["id"], 1)
        assert state.subscribers.deliverer.wait_idle(10)
        posts = receiver.posts()
    kinds = [json.loads(d.body)["type"] for d in posts]
    succeeded = sum(1 for r in made if r["status"] == "succeeded")
    assert sorted(kinds) == ["refund.created"] + ["transaction.succeeded"] * succeeded
    for delivery in posts:
        body = json.loads(delivery.body)
        assert body["type"] in PUBLISHED_EVENTS
        assert _violations(body["data"], ITEM, partial_refunds) == []
