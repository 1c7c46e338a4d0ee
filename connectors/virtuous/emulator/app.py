"""A faithful local fake of the Virtuous CRM+ REST API, for tests and ``connector sandbox``.

::

    app = create_app(EmulatorSettings(api_keys={"k": "org-1"}, rate_window_seconds=2))
    with EmulatorServer(app) as server:   # core.emulation
        httpx.post(f"{server.url}/api/v2/Gift/Transaction", ...)
    app.state.emulator.gifts              # inspect what it holds

The control plane, never authenticated, rate-limited or faulted:

- ``POST /_emulator/import``: run the nightly import (``{"transactionSource": s}``: only that one)
- ``POST /_emulator/seed``: create ``projects``, ``contacts``, ``gifts``, ``apiKeys``, ``users``
- ``GET /_emulator/state``: counts and every record, pending transaction and needs-update item
- ``GET /_emulator/holding``: the gift transactions in the import's holding area, each with its
  state ("pending" or "needs update") and reason (``?transactionSource=s``: only that one). Real
  Virtuous shows this under Imports in its UI; its API documents no such listing.
- ``GET|POST /_emulator/faults``: read or change the :class:`core.emulation.Faults` switches
- ``POST /_emulator/reset``: forget everything seeded or received; faults back to the settings'
- ``GET /_emulator/requests``: the request log (no credentials)
- ``GET /_emulator/outbox``: every webhook fired, signed with the settings' ``webhook_secret``
- ``GET /_emulator/deliveries``: each attempt to deliver one to a subscription (see
  :mod:`.webhooks`), with the status its receiver answered
- ``POST /_emulator/clock``: ``{"advanceSeconds": n}`` moves the emulator's clock forward
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.virtuous.emulator.gateway import RequestLog, emulator, error, token
from connectors.virtuous.emulator.imports import (
    build_gift,
    create_contact,
    resolve_designations,
    run_import,
)
from connectors.virtuous.emulator.routes import ROUTES
from connectors.virtuous.emulator.settings import ApiKey, EmulatorSettings, User
from connectors.virtuous.emulator.shapes import (
    contact_full,
    dotnet_datetime,
    gift_full,
    project_json,
)
from connectors.virtuous.emulator.store import EmulatorState, Payload, Pending, Project
from connectors.virtuous.emulator.transactions import custom_fields, lower_keys, parse_int, text
from connectors.virtuous.emulator.webhooks import ROUTES as WEBHOOK_ROUTES
from connectors.virtuous.emulator.webhooks import deliveries
from core.emulation import FaultMiddleware, json_response, stopped_with_the_server

__all__ = ["EmulatorSettings", "EmulatorState", "create_app"]

_KEYS = TypeAdapter(dict[str, ApiKey])
_USERS = TypeAdapter(list[User])


Control = Callable[[EmulatorState, dict[str, Any]], Response]


def _control(handler: Control) -> Callable[[Request], Awaitable[Response]]:
    """Hand the handler the state and the JSON body; a bad body or value is a 400."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                msg = "the body must be a JSON object"
                raise ValueError(msg)
            return handler(emulator(request), body)
        except ValueError as exc:  # pydantic's ValidationError and JSONDecodeError included
            return json_response({"message": str(exc)}, 400)

    return endpoint


def _pending_json(pending: Pending) -> dict[str, Any]:
    return {
        "id": pending.id,
        "kind": pending.kind,
        "transactionSource": pending.transaction_source,
        "transactionId": pending.transaction_id,
        "importName": pending.import_name,
        "org": pending.org,
        "received": dotnet_datetime(pending.received),
        "reason": pending.reason,
        "payload": pending.payload,
    }


def seed_records(state: EmulatorState, body: Payload) -> dict[str, list[int]]:
    """Create records directly (no import, no webhooks). Keys as in the transaction bodies."""
    created: dict[str, list[int]] = {"projects": [], "contacts": [], "gifts": []}
    for item in body.get("projects") or []:
        data = lower_keys(item)
        code = text(data, "projectcode") or text(data, "code") or ""
        project = Project(
            id=state.next_id("project", parse_int(data["id"]) if text(data, "id") else None),
            name=text(data, "name") or code,
            code=code,
            external_accounting_code=text(data, "externalaccountingcode"),
            description=text(data, "description"),
            type=text(data, "type"),
            location=text(data, "location"),
            is_active=data.get("isactive") is not False,
            custom_fields=custom_fields(data.get("customfields")) or {},
            **state.stamp(),
        )
        state.projects[project.id] = project
        created["projects"].append(project.id)
    for item in body.get("contacts") or []:
        data = lower_keys(item)
        wanted = parse_int(data.pop("id")) if text(data, "id") else None
        created["contacts"].append(
            create_contact(state, data, text(data, "referencesource"), wanted).id
        )
    for item in body.get("gifts") or []:
        data = lower_keys(item)
        contact = state.contacts.get(parse_int(data.get("contactid")) or 0)
        projects, problem = resolve_designations(state, data)
        if contact is None or problem:
            msg = problem or f"seeded gift names no existing contact: {item}"
            raise ValueError(msg)
        wanted = parse_int(data["id"]) if text(data, "id") else None
        gift = build_gift(state, data, contact, projects, wanted)
        state.gifts[gift.id] = gift
        created["gifts"].append(gift.id)
    return created


@_control
def _import(state: EmulatorState, body: dict[str, Any]) -> Response:
    source = lower_keys(body).get("transactionsource")
    return json_response(run_import(state, state.settings, source))


@_control
def _seed(state: EmulatorState, body: dict[str, Any]) -> Response:
    # Key names and user fields are taken as sent: lower-casing would change an API key.
    raw = {k.lower(): v for k, v in body.items()}
    keys = _KEYS.validate_python(raw.get("apikeys") or {})
    users = _USERS.validate_python(raw.get("users") or [])
    created = seed_records(state, lower_keys(body))
    state.api_keys.update(keys)
    state.users.update({u.email.lower(): u for u in users})
    return json_response(created)


@_control
def _state(state: EmulatorState, body: dict[str, Any]) -> Response:
    return json_response(
        {
            "now": dotnet_datetime(state.now()),
            "counts": state.counts(),
            "requestCounts": dict(state.request_counts),
            "contacts": [contact_full(state, c) for c in state.contacts.values()],
            "gifts": [gift_full(state, g) for g in state.gifts.values()],
            "projects": [project_json(p) for p in state.projects.values()],
            "pending": [_pending_json(p) for p in state.pending],
            "needsUpdate": [_pending_json(p) for p in state.needs_update],
        }
    )


async def _holding(request: Request) -> Response:
    state = emulator(request)
    wanted = request.query_params.get("transactionSource")
    rows = [
        {
            "transactionSource": p.transaction_source,
            "transactionId": p.transaction_id,
            "state": label,
            "reason": p.reason,
        }
        for label, held in (("pending", state.pending), ("needs update", state.needs_update))
        for p in held
        if p.kind == "gift" and (wanted is None or (p.transaction_source or "") == wanted)
    ]
    return json_response(rows)


@_control
def _faults(state: EmulatorState, body: dict[str, Any]) -> Response:
    state.faults.update(**body)  # a GET has no body, so nothing changes
    return json_response(state.faults.model_dump())


@_control
def _reset(state: EmulatorState, body: dict[str, Any]) -> Response:
    state.reset()
    return json_response(state.counts())


@_control
def _requests(state: EmulatorState, body: dict[str, Any]) -> Response:
    entries = [
        {
            "time": dotnet_datetime(e.time),
            "method": e.method,
            "path": e.path,
            "query": e.query,
            "status": e.status,
            "org": e.org,
            "headers": e.headers,
            "body": e.body,
        }
        for e in state.requests
    ]
    return json_response(entries)


@_control
def _outbox(state: EmulatorState, body: dict[str, Any]) -> Response:
    return json_response(state.outbox)


@_control
def _clock(state: EmulatorState, body: dict[str, Any]) -> Response:
    seconds = float(lower_keys(body).get("advanceseconds") or 0)
    state.clock_offset += timedelta(seconds=seconds)
    return json_response({"now": dotnet_datetime(state.now())})


async def _no_route(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"No HTTP resource was found that matches the request URI '{request.url}'."
    if status == 405:
        message = f"The requested resource does not support http method '{request.method}'."
    return error(emulator(request), status, message)


CONTROL_ROUTES = [
    Route("/_emulator/import", _import, methods=["POST"]),
    Route("/_emulator/seed", _seed, methods=["POST"]),
    Route("/_emulator/state", _state, methods=["GET"]),
    Route("/_emulator/holding", _holding, methods=["GET"]),
    Route("/_emulator/faults", _faults, methods=["GET", "POST"]),
    Route("/_emulator/reset", _reset, methods=["POST"]),
    Route("/_emulator/requests", _requests, methods=["GET"]),
    Route("/_emulator/outbox", _outbox, methods=["GET"]),
    Route("/_emulator/deliveries", deliveries, methods=["GET"]),
    Route("/_emulator/clock", _clock, methods=["POST"]),
]


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """A fresh emulator; its state is ``app.state.emulator`` (an :class:`EmulatorState`)."""
    state = EmulatorState(settings or EmulatorSettings())
    app = Starlette(
        routes=[
            Route("/Token", token, methods=["POST"]),
            *ROUTES,
            *WEBHOOK_ROUTES,
            *CONTROL_ROUTES,
        ],
        middleware=[
            Middleware(RequestLog, state=state),  # outermost, so injected faults are logged too
            Middleware(FaultMiddleware, faults=state.faults),
        ],
        lifespan=stopped_with_the_server(state.deliverer),
        exception_handlers={404: _no_route, 405: _no_route},
    )
    app.state.emulator = state
    return app
