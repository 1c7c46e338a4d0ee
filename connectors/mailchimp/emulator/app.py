"""A faithful local fake of the Mailchimp Marketing API (audience members), for tests and sandboxes.

::

    app = create_app(EmulatorSettings(api_keys=["k-us1"], lists={"L1": "Donors"}))
    with EmulatorServer(app) as server:           # core.emulation
        base_url = f"{server.url}/3.0"             # the connector's base_url setting
    app.state.emulator.members["L1"]               # inspect what it holds

Under ``/3.0``: ``GET /ping``; ``GET /lists/{id}/members`` (count, offset, status,
since/before_last_changed, sort_field, sort_dir, fields, exclude_fields); ``GET|PUT|PATCH|DELETE
/lists/{id}/members/{hash}``; ``POST /lists/{id}/members/{hash}/tags``; ``POST /lists/{id}``
(batch subscribe); ``GET /lists/{id}/merge-fields`` (count, offset, type, required). Merge field
values are checked by their field's type (:mod:`.merge_fields`). HTTP Basic with a seeded key as
the password; at most ``max_connections`` requests in flight per key, beyond that 429. Every
error, injected faults included, is ``application/problem+json``.

The control plane, never authenticated, capped or faulted: ``POST /_emulator/seed`` (``lists``,
``merge_fields`` (audience id -> definitions), ``members``, ``api_keys``), ``GET
/_emulator/state``, ``GET|POST /_emulator/faults``, ``POST /_emulator/reset``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.mailchimp.emulator.merge_fields import MergeField, definition_json
from connectors.mailchimp.emulator.shapes import fault_problem, member_json, problem, project
from connectors.mailchimp.emulator.store import (
    STATUSES,
    EmulatorSettings,
    EmulatorState,
    Member,
    Refusal,
    hash_of,
    iso,
    parse_time,
)
from connectors.mailchimp.emulator.webhooks import CONTROL_ROUTES as WEBHOOK_CONTROL_ROUTES
from connectors.mailchimp.emulator.webhooks import ROUTES as WEBHOOK_ROUTES
from connectors.mailchimp.emulator.webhooks import Snapshot, fire_changes, read_json
from core.emulation import (
    ApiMiddleware,
    FaultMiddleware,
    empty_response,
    json_response,
    stopped_with_the_server,
)
from core.emulation.listings import query_key

__all__ = ["EmulatorSettings", "EmulatorState", "create_app"]

_SORT_FIELDS = {"last_changed", "timestamp_opt", "timestamp_signup"}
#: The query names that choose a page or its fields, not the members listed.
_PAGING = frozenset({"count", "offset", "fields", "exclude_fields"})


def emulator(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _api_key(scope: Scope) -> str | None:
    """The password of an HTTP Basic header: Mailchimp ignores the user name."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2]
    return None


class Gateway(ApiMiddleware):
    """Auth and the connection cap in front of every API request; logs method, path and query.

    Outside the fault layer, so an injected delay keeps its connection busy as a slow answer does.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        super().__init__(app)
        self.state = state

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        state.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
            }
        )
        key = _api_key(scope)
        if key is None or key not in state.api_keys:
            response = problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        elif state.in_flight[key] >= state.settings.max_connections:
            state.rejected_connections += 1
            response = problem(
                429,
                "Too Many Requests",
                f"You have exceeded the limit of {state.settings.max_connections} simultaneous "
                "connections. (TooManyConnections)",
            )
        else:
            state.in_flight[key] += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight[key])
            try:
                await self.app(scope, receive, send)
            finally:
                state.in_flight[key] -= 1
            return
        await response(scope, receive, send)


# --- routes -----------------------------------------------------------------------------------


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise Refusal(400, "Invalid Resource", f"{name} must be a number") from None


def _skip_merge(request: Request) -> bool:
    """``skip_merge_validation=true``: required merge fields may be left empty."""
    return request.query_params.get("skip_merge_validation", "").lower() == "true"


async def ping(request: Request) -> Response:
    return json_response({"health_status": "Everything's Chimpy!"})


async def list_members(request: Request) -> Response:
    state = emulator(request)
    list_id = request.path_params["list_id"]
    audience = state.audience(list_id)
    query = request.query_params
    # Any member's edit or a member more or fewer makes a new key: nothing kept goes stale.
    key = (list_id, id(audience), len(audience), Member.edits, query_key(dict(query), _PAGING))
    members = state.listings.get(key, lambda: _members(audience, query))
    count = min(_int(request, "count", 10), state.settings.count_max)
    offset = _int(request, "offset", 0)
    page = members[offset : offset + count]
    data = {
        "members": [member_json(list_id, m, state) for m in page],
        "list_id": list_id,
        "total_items": len(members),
        "_links": [],
    }
    return json_response(
        project(
            data, request.query_params.get("fields"), request.query_params.get("exclude_fields")
        )
    )


def _members(audience: dict[str, Member], query: QueryParams) -> list[Member]:
    """The audience's members the query filters on, in the order it asks for."""
    members: Iterable[Member] = audience.values()
    if status := query.get("status"):
        if status not in STATUSES:
            raise Refusal(400, "Invalid Resource", f"status must be one of {sorted(STATUSES)}")
        members = [m for m in members if m.status == status]
    if since := query.get("since_last_changed"):
        after = parse_time(since, "since_last_changed")
        members = [m for m in members if m.last_changed > after]
    if before := query.get("before_last_changed"):
        until = parse_time(before, "before_last_changed")
        members = [m for m in members if m.last_changed < until]
    members = list(members)
    sort_field = query.get("sort_field")
    if sort_field:
        if sort_field not in _SORT_FIELDS:
            detail = f"sort_field must be one of {sorted(_SORT_FIELDS)}"
            raise Refusal(400, "Invalid Resource", detail)
        descending = (query.get("sort_dir") or "ASC").upper() == "DESC"
        # Stable, so members changed in the same second keep their order between pages.
        members.sort(
            key=lambda m: m.created if sort_field != "last_changed" else m.last_changed,
            reverse=descending,
        )
    return members


async def list_merge_fields(request: Request) -> Response:
    state = emulator(request)
    list_id = request.path_params["list_id"]
    state.audience(list_id)
    fields = state.merge_fields[list_id]
    query = request.query_params
    chosen = [
        (merge_id, f)
        for merge_id, f in enumerate(fields, start=1)
        if query.get("type") in (None, "", f.type)
        and (query.get("required") or str(f.required)).lower() == str(f.required).lower()
    ]
    count = min(_int(request, "count", 10), state.settings.count_max)
    offset = _int(request, "offset", 0)
    data = {
        "merge_fields": [
            definition_json(f, merge_id, list_id) for merge_id, f in chosen[offset : offset + count]
        ],
        "list_id": list_id,
        "total_items": len(chosen),
        "_links": [],
    }
    return json_response(project(data, query.get("fields"), query.get("exclude_fields")))


async def get_member(request: Request) -> Response:
    state = emulator(request)
    list_id, subscriber = request.path_params["list_id"], request.path_params["subscriber"]
    member = state.member(list_id, subscriber)
    return json_response(
        project(
            member_json(list_id, member, state),
            request.query_params.get("fields"),
            request.query_params.get("exclude_fields"),
        )
    )


async def put_member(request: Request) -> Response:
    state = emulator(request)
    list_id, subscriber = request.path_params["list_id"], request.path_params["subscriber"]
    before = Snapshot.of(state.audience(list_id).get(hash_of(subscriber)))
    member = state.upsert(
        list_id, subscriber, await read_json(request), skip_merge_validation=_skip_merge(request)
    )
    fire_changes(state, list_id, before, member, "api")
    return json_response(member_json(list_id, member, state))


async def patch_member(request: Request) -> Response:
    state = emulator(request)
    list_id, subscriber = request.path_params["list_id"], request.path_params["subscriber"]
    before = Snapshot.of(state.audience(list_id).get(hash_of(subscriber)))
    member = state.update(
        list_id, subscriber, await read_json(request), skip_merge_validation=_skip_merge(request)
    )
    fire_changes(state, list_id, before, member, "api")
    return json_response(member_json(list_id, member, state))


async def delete_member(request: Request) -> Response:
    state = emulator(request)
    list_id, subscriber = request.path_params["list_id"], request.path_params["subscriber"]
    before = Snapshot.of(state.member(list_id, subscriber))
    state.archive(list_id, subscriber)
    fire_changes(state, list_id, before, state.member(list_id, subscriber), "api")
    return empty_response(204)


async def member_tags(request: Request) -> Response:
    body = await read_json(request)
    emulator(request).set_tags(
        request.path_params["list_id"], request.path_params["subscriber"], body.get("tags")
    )
    return empty_response(204)


async def batch_members(request: Request) -> Response:
    state = emulator(request)
    list_id = request.path_params["list_id"]
    body = await read_json(request)
    before = _snapshots(state, list_id, body)
    outcome = state.batch(list_id, body, skip_merge_validation=_skip_merge(request))
    for member in [*outcome["created"], *outcome["updated"]]:
        fire_changes(state, list_id, before.get(member.id), member, "api")
    return json_response(
        {
            "new_members": [member_json(list_id, m, state) for m in outcome["created"]],
            "updated_members": [member_json(list_id, m, state) for m in outcome["updated"]],
            "errors": outcome["errors"],
            "total_created": len(outcome["created"]),
            "total_updated": len(outcome["updated"]),
            "error_count": len(outcome["errors"]),
            "_links": [],
        }
    )


def _snapshots(state: EmulatorState, list_id: str, body: dict[str, Any]) -> dict[str, Snapshot]:
    """The members a batch names, as they are before it."""
    audience = state.audience(list_id)
    found = {}
    for entry in body.get("members") or []:
        address = entry.get("email_address") if isinstance(entry, dict) else None
        member = audience.get(hash_of(address)) if isinstance(address, str) else None
        snapshot = Snapshot.of(member)
        if member is not None and snapshot is not None:
            found[member.id] = snapshot
    return found


_MEMBER = "/3.0/lists/{list_id}/members/{subscriber}"
API_ROUTES = [
    Route("/3.0/ping", ping, methods=["GET"]),
    Route("/3.0/lists/{list_id}/members", list_members, methods=["GET"]),
    Route("/3.0/lists/{list_id}/merge-fields", list_merge_fields, methods=["GET"]),
    Route(_MEMBER, get_member, methods=["GET"]),
    Route(_MEMBER, put_member, methods=["PUT"]),
    Route(_MEMBER, patch_member, methods=["PATCH"]),
    Route(_MEMBER, delete_member, methods=["DELETE"]),
    Route(_MEMBER + "/tags", member_tags, methods=["POST"]),
    Route("/3.0/lists/{list_id}", batch_members, methods=["POST"]),
    *WEBHOOK_ROUTES,
]


# --- control plane ----------------------------------------------------------------------------


async def _seed(request: Request) -> Response:
    state = emulator(request)
    body = await read_json(request)
    state.api_keys.update(str(k) for k in body.get("api_keys") or [])
    for list_id, name in (body.get("lists") or {}).items():
        state.add_list(list_id, str(name))
    try:
        for list_id, fields in (body.get("merge_fields") or {}).items():
            state.audience(list_id)
            state.add_list(list_id, state.lists[list_id], [MergeField(**f) for f in fields])
    except (ValidationError, TypeError, AttributeError) as exc:
        return problem(400, "Invalid Resource", f"merge_fields: {exc}")
    default_list = next(iter(state.lists))
    seeded = 0
    for entry in body.get("members") or []:
        list_id = entry.get("list_id") or default_list
        moment = (
            parse_time(entry["last_changed"], "last_changed") if entry.get("last_changed") else None
        )
        state.create(
            list_id,
            state.check_email(entry.get("email_address")),
            entry.get("status") or "subscribed",
            entry.get("merge_fields") or {},
            entry.get("tags"),
            moment,
        )
        seeded += 1
    return json_response({"members": seeded, "lists": sorted(state.lists)})


async def _state(request: Request) -> Response:
    state = emulator(request)
    return json_response(
        {
            "now": iso(state.now()),
            "lists": {
                list_id: [member_json(list_id, m, state) for m in state.members[list_id].values()]
                for list_id in state.lists
            },
            "max_in_flight": state.max_in_flight,
            "rejected_connections": state.rejected_connections,
            "requests": state.requests,
        }
    )


async def _faults(request: Request) -> Response:
    state = emulator(request)
    if request.method == "POST":
        try:
            state.faults.update(**(await read_json(request)))
        except (ValidationError, ValueError, TypeError) as exc:
            return problem(400, "Invalid Resource", str(exc))
    return json_response(state.faults.model_dump())


async def _reset(request: Request) -> Response:
    emulator(request).reset()
    return empty_response(204)


CONTROL_ROUTES = [
    Route("/_emulator/seed", _seed, methods=["POST"]),
    Route("/_emulator/state", _state, methods=["GET"]),
    Route("/_emulator/faults", _faults, methods=["GET", "POST"]),
    Route("/_emulator/reset", _reset, methods=["POST"]),
    *WEBHOOK_CONTROL_ROUTES,
]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return problem(exc.status, exc.title, exc.detail, exc.errors)


async def _no_route(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return problem(
            405, "Method Not Allowed", "The requested method and resource are not compatible."
        )
    return problem(404, "Resource Not Found", "The requested resource could not be found.")


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """A fresh emulator; its state is ``app.state.emulator`` (an :class:`EmulatorState`)."""
    state = EmulatorState(settings or EmulatorSettings())
    app = Starlette(
        routes=[*API_ROUTES, *CONTROL_ROUTES],
        middleware=[
            Middleware(Gateway, state=state),
            Middleware(FaultMiddleware, faults=state.faults, error_body=fault_problem),
        ],
        lifespan=stopped_with_the_server(state.deliverer),
        exception_handlers={Refusal: _refused, 404: _no_route, 405: _no_route},
    )
    app.state.emulator = state
    return app
