"""A faithful local Stripe (the parts a donation sync uses), for tests and ``connector sandbox``.

Endpoints: ``GET /v1/charges`` (and ``/{id}``; ``POST /{id}/capture``), ``/v1/customers``
(and ``/{id}``), ``/v1/refunds`` (and ``/{id}``; ``POST`` creates a refund),
``/v1/balance_transactions/{id}``, ``/v1/events`` and ``/v1/webhook_endpoints`` (``POST``
answers the endpoint's ``whsec_`` secret, once; ``GET``, ``GET /{id}``, ``DELETE /{id}``). Every
event is POSTed to each enabled endpoint that enabled its type (or ``*``), with a
``Stripe-Signature`` made anew at each attempt; an answer other than 2xx is retried on
``webhook_retry_delays`` (times ``webhook_delay_scale``). Lists are newest first in Stripe's
envelope, with ``limit``, ``starting_after``, ``ending_before``, ``created[gt|gte|lt|lte]`` and
``expand[]``, and any parameter Stripe does not declare is refused with a 400 naming it
(:mod:`.params`); errors, and the faults a test switches on (429 storms, 5xx, timeouts), use
Stripe's envelope and statuses, so the SDK raises its own exception for each; keys are checked
like Stripe does (Bearer, or Basic with the key as the user), before any fault::

    app = create_app(EmulatorSettings(api_keys=["sk_test_123"]))
    seed_charges(app.state.store, 30, currency="jpy")
    with EmulatorServer(app) as server:
        client = stripe.StripeClient("sk_test_123", base_addresses={"api": server.url})

Control plane (never faulted, no key needed): ``POST /_emulator/seed``, ``GET /_emulator/state``,
``GET|POST /_emulator/faults``, ``POST /_emulator/reset``, ``GET /_emulator/deliveries`` (every
delivery attempt), ``POST /_emulator/refunds/{id}/status`` (``{"status": "failed"}``: the bank's
answer to a pending refund; fires ``charge.refund.updated``).
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.stripe.emulator.index import Span
from connectors.stripe.emulator.params import DECLARED, DECLARED_FORM, refuse_undeclared
from connectors.stripe.emulator.store import (
    API_VERSION,
    Obj,
    StoreError,
    StripeStore,
    seed_charges,
)
from core.emulation import (
    CONTROL_PREFIX,
    ApiMiddleware,
    FaultMiddleware,
    Faults,
    WebhookDeliverer,
    attempts_json,
    json_response,
)

__all__ = ["EmulatorSettings", "create_app", "seed_charges"]

#: Up to ``count`` objects of a list inside a span, newest first or (False) oldest first.
Finder = Callable[[Span, int, bool], list[Obj]]

DEFAULT_KEY = "sk_test_emulator"
_MISSING_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


class EmulatorSettings(BaseModel):
    """How the emulated Stripe account behaves."""

    api_keys: list[str] = Field(default_factory=lambda: [DEFAULT_KEY])
    faults: Faults = Field(default_factory=Faults)
    clock: Callable[[], float] | None = None  # Unix seconds; tests pass a controllable one
    # In test mode Stripe retries a failed delivery "three times over a few hours" (live mode:
    # for up to three days, backing off exponentially); the exact waits are not published.
    webhook_retry_delays: tuple[float, ...] = (600.0, 3600.0, 10_800.0)
    webhook_delay_scale: float = Field(default=1.0, ge=0)  # tests run the schedule in ms
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)


# --- Stripe's wire format ----------------------------------------------------------------


def error_body(error: StoreError) -> Obj:
    """Stripe's error envelope for ``error``."""
    body: Obj = {"type": "invalid_request_error", "message": error.message}
    if error.code:
        body["code"] = error.code
    if error.param:
        body["param"] = error.param
    return {"error": body}


def stripe_error(error: StoreError) -> Response:
    return json_response(error_body(error), error.status)


_RATE_LIMITED = (
    "Request rate limit exceeded. You can learn more about rate limits here "
    "https://stripe.com/docs/rate-limits."
)


def stripe_fault(status: int, message: str, headers: dict[str, str]) -> Response:
    """An injected fault in Stripe's envelope: a 429 is ``invalid_request_error`` with code
    ``rate_limit`` (the SDK raises RateLimitError for the status), anything else ``api_error``.
    A body without ``error`` would make the SDK raise "Invalid response object from API"."""
    if status == 429:
        body: Obj = {"type": "invalid_request_error", "code": "rate_limit"}
        body["message"] = _RATE_LIMITED
    else:
        body = {"type": "api_error", "message": message}
    return json_response({"error": body}, status, headers)


def mask_key(key: str) -> str:
    """``sk_test_****1234``: the prefix and last four characters, as Stripe's messages show."""
    prefix = key[: key.index("_", key.index("_") + 1) + 1] if key.count("_") >= 2 else ""
    return f"{prefix}****{key[-4:]}" if len(key) > len(prefix) + 8 else "****"


def parse_params(pairs: list[tuple[str, str]]) -> Obj:
    """Stripe's bracket notation into nested values: ``created[gte]=1`` -> ``{"created":
    {"gte": "1"}}``, ``expand[0]=a`` and ``expand[]=a`` -> ``{"expand": ["a"]}``."""
    params: Obj = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        container: Any = params
        for part, following in itertools.pairwise(parts):
            container = _child(container, part, following)
        if isinstance(container, list):
            container.append(value)
        else:
            container[parts[-1]] = value
    return params


def _child(container: Any, part: str, following: str) -> Any:
    """The dict or list under ``part``, made when missing (a list when indices follow)."""
    fresh: Any = [] if following == "" or following.isdigit() else {}
    if isinstance(container, list):
        index = int(part) if part.isdigit() else len(container)
        if index >= len(container):
            container.append(fresh)
            return container[-1]
        return container[index]
    return container.setdefault(part, fresh)


def _integer(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StoreError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
        ) from None


def created_span(value: Any) -> Span:
    """``created=N`` or ``created[gt|gte|lt|lte]=N`` as the ranks a list may show."""
    if value is None:
        return Span()
    if not isinstance(value, dict):
        exact = _integer(value, "created")
        return Span((exact,), (exact + 1,))
    unknown = set(value) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise StoreError(
            400,
            f"Received unknown parameter: created[{sorted(unknown)[0]}]",
            code="parameter_unknown",
            param=f"created[{sorted(unknown)[0]}]",
        )
    span = Span()
    for op, raw in value.items():
        bound = _integer(raw, f"created[{op}]")
        # (N,) sorts before every rank of second N, (N + 1,) after them all.
        low = {"gt": (bound + 1,), "gte": (bound,)}.get(op)
        high = {"lt": (bound,), "lte": (bound + 1,)}.get(op)
        span = span.narrowed(low, high)
    return span


def expansions(params: Obj, *, listing: bool) -> list[str]:
    """``expand[]`` paths; on a list each must start with ``data.``, which is stripped."""
    raw = params.get("expand") or []
    if isinstance(raw, str):  # expand=x, not expand[]=x
        raise StoreError(400, "Invalid array", code="parameter_invalid", param="expand")
    paths = list(raw.values()) if isinstance(raw, dict) else list(raw)
    if not listing:
        return [str(p) for p in paths]
    for path in paths:
        if not str(path).startswith("data."):
            raise StoreError(400, f"This property cannot be expanded ({path}).", param="expand")
    return [str(p)[len("data.") :] for p in paths]


def page(store: StripeStore, url: str, find: Finder, span: Span, params: Obj) -> Obj:
    """One page, newest first, as Stripe's list envelope, of what ``find`` finds in ``span``
    (``find(span, count, newest_first)``)."""
    limit = _integer(params.get("limit", 10), "limit")
    if not 1 <= limit <= 100:
        bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
        raise StoreError(
            400, f"This value must be {bound}.", code="parameter_invalid_integer", param="limit"
        )
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise StoreError(
            400, "You may only specify one of these parameters: ending_before, starting_after."
        )
    kind = url.rsplit("/", 1)[-1].removesuffix("s")  # "/v1/charges" lists charges
    # A cursor is a position in the list's order; the object itself need not match the filters.
    # One more than the page is read to tell whether there is more.
    if before:
        created, order = _rank(store, before, kind, "ending_before")
        newer = find(span.narrowed(low=(created, order + 1)), limit + 1, False)
        chunk, has_more = newer[:limit][::-1], len(newer) > limit
    else:
        if after:
            span = span.narrowed(high=_rank(store, after, kind, "starting_after"))
        older = find(span, limit + 1, True)
        chunk, has_more = older[:limit], len(older) > limit
    expand = expansions(params, listing=True)
    data = [store.view(item, expand) for item in chunk]
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _rank(store: StripeStore, object_id: str, kind: str, param: str) -> tuple[int, int]:
    found = store.find(object_id)
    if found is None or found.get("object") != kind:
        raise StoreError(
            400, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
        )
    return store.rank(found)


# --- the API -----------------------------------------------------------------------------


def _store(request: Request) -> StripeStore:
    store: StripeStore = request.app.state.store
    return store


def _query(request: Request, route: str) -> Obj:
    """The query of a GET to ``route``, refused as Stripe does if it holds an undeclared name."""
    params = parse_params(parse_qsl(request.url.query, keep_blank_values=True))
    refuse_undeclared(params, DECLARED[route])
    return params


def _listing(table: str, fields: tuple[str, ...]) -> Callable[[Request], Any]:
    """``GET /v1/<table>``: filtered by ``created`` and by equality on each of ``fields``."""
    route = f"/v1/{table}"

    async def list_objects(request: Request) -> Response:
        params = _query(request, route)
        span = created_span(params.get("created"))
        wanted = {name: params[name] for name in fields if name in params}
        store = _store(request)

        def find(where: Span, count: int, newest_first: bool) -> list[Obj]:
            return store.listed(table, where, count, wanted=wanted, newest_first=newest_first)

        return json_response(page(store, route, find, span, params))

    return list_objects


async def list_events(request: Request) -> Response:
    params = _query(request, "/v1/events")
    span = created_span(params.get("created"))
    raw_types = params.get("types") or []
    types = list(raw_types.values()) if isinstance(raw_types, dict) else list(raw_types)
    if params.get("type"):
        types.append(params["type"])

    def wanted(kind: str) -> bool:
        return not types or any(
            kind == t or (t.endswith(".*") and kind.startswith(t[:-1])) for t in types
        )

    store = _store(request)

    def find(where: Span, count: int, newest_first: bool) -> list[Obj]:
        chosen = wanted if types else None
        return store.listed("events", where, count, types=chosen, newest_first=newest_first)

    return json_response(page(store, "/v1/events", find, span, params))


def _retrieve(table: str, kind: str) -> Callable[[Request], Any]:
    async def retrieve(request: Request) -> Response:
        params = _query(request, f"/v1/{table}/{{id}}")
        store = _store(request)
        obj = store.get(table, request.path_params["id"], kind)
        return json_response(store.view(obj, expansions(params, listing=False)))

    return retrieve


async def _idempotent_post(request: Request, route: str, act: Callable[[Obj], Obj]) -> Response:
    """A POST as Stripe answers it: ``act(params)`` once per ``Idempotency-Key``, the same answer
    replayed for a retry, refusals in Stripe's envelope. A parameter ``route`` does not declare
    is refused before anything runs, so that refusal is not saved for the key (as Stripe does
    not save results of requests that fail validation)."""
    store = _store(request)
    key = request.headers.get("Idempotency-Key")
    if key and key in store.idempotent:
        status, body = store.idempotent[key]
        return json_response(body, status, {"Idempotent-Replayed": "true"})
    params = parse_params(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    refuse_undeclared(params, DECLARED_FORM[route])
    try:
        status, body = 200, store.view(act(params), expansions(params, listing=False))
    except StoreError as error:
        status, body = error.status, error_body(error)
    if key:
        store.idempotent[key] = (status, body)
    return json_response(body, status)


async def capture_charge(request: Request) -> Response:
    charge_id = request.path_params["id"]
    return await _idempotent_post(
        request, "/v1/charges/{id}/capture", lambda params: _store(request).capture(charge_id)
    )


async def create_refund(request: Request) -> Response:
    return await _idempotent_post(request, "/v1/refunds", _store(request).create_refund)


async def create_webhook_endpoint(request: Request) -> Response:
    store = _store(request)
    return await _idempotent_post(request, "/v1/webhook_endpoints", store.create_webhook_endpoint)


async def delete_webhook_endpoint(request: Request) -> Response:
    _query(request, "/v1/webhook_endpoints/{id}")
    return json_response(_store(request).delete_webhook_endpoint(request.path_params["id"]))


async def deliveries(request: Request) -> Response:
    """Control plane: every webhook delivery attempt, oldest first."""
    deliverer = _store(request).deliverer
    return json_response(attempts_json(deliverer) if deliverer else [])


ROUTES = [
    Route("/v1/charges", _listing("charges", ("customer", "payment_intent", "transfer_group"))),
    Route("/v1/charges/{id}", _retrieve("charges", "charge")),
    Route("/v1/charges/{id}/capture", capture_charge, methods=["POST"]),
    Route("/v1/customers", _listing("customers", ("email", "test_clock"))),
    Route("/v1/customers/{id}", _retrieve("customers", "customer")),
    Route("/v1/refunds", _listing("refunds", ("charge", "payment_intent"))),
    Route("/v1/refunds", create_refund, methods=["POST"]),
    Route("/v1/refunds/{id}", _retrieve("refunds", "refund")),
    Route(
        "/v1/balance_transactions/{id}", _retrieve("balance_transactions", "balance transaction")
    ),
    Route("/v1/events", list_events),
    Route("/v1/events/{id}", _retrieve("events", "event")),
    Route("/v1/webhook_endpoints", _listing("webhook_endpoints", ())),
    Route("/v1/webhook_endpoints", create_webhook_endpoint, methods=["POST"]),
    Route("/v1/webhook_endpoints/{id}", _retrieve("webhook_endpoints", "webhook_endpoint")),
    Route("/v1/webhook_endpoints/{id}", delete_webhook_endpoint, methods=["DELETE"]),
]


# --- the control plane -------------------------------------------------------------------


async def seed(request: Request) -> Response:
    """Body: ``{"api_keys": [...], "customers": [...], "charges": [...], "refunds": [...]}``."""
    body = await request.json()
    store, settings = _store(request), request.app.state.settings
    settings.api_keys.extend(k for k in body.get("api_keys", []) if k not in settings.api_keys)
    with store.lock:
        made = {
            "customers": [store.seed_customer(c)["id"] for c in body.get("customers", [])],
            "charges": [store.seed_charge(c)["id"] for c in body.get("charges", [])],
            "refunds": [store.create_refund(r)["id"] for r in body.get("refunds", [])],
        }
    return json_response(made, 201)


async def state(request: Request) -> Response:
    snapshot = _store(request).snapshot()
    snapshot["requests"] = list(request.app.state.requests)
    return json_response(snapshot)


async def faults(request: Request) -> Response:
    current: Faults = request.app.state.settings.faults
    if request.method == "POST":
        current.update(**await request.json())
    return json_response(current.model_dump())


async def settle_refund(request: Request) -> Response:
    """Body ``{"status": "succeeded"|"failed"|...}``: the bank's answer to a pending refund."""
    body = await request.json()
    refund = _store(request).settle_refund(request.path_params["id"], str(body.get("status")))
    return json_response(refund)


async def reset(request: Request) -> Response:
    _store(request).reset()
    request.app.state.requests.clear()
    request.app.state.settings.faults.clear()
    return json_response({"reset": True})


CONTROL = [
    Route(f"{CONTROL_PREFIX}seed", seed, methods=["POST"]),
    Route(f"{CONTROL_PREFIX}state", state),
    Route(f"{CONTROL_PREFIX}faults", faults, methods=["GET", "POST"]),
    Route(f"{CONTROL_PREFIX}reset", reset, methods=["POST"]),
    Route(f"{CONTROL_PREFIX}deliveries", deliveries),
    Route(f"{CONTROL_PREFIX}refunds/{{id}}/status", settle_refund, methods=["POST"]),
]


# --- middleware --------------------------------------------------------------------------


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``Basic base64(<key>:)``."""
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() == "bearer":
        return credential.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credential).decode().partition(":")[0] or None
        except ValueError:
            return None
    return None


class StripeEdge(ApiMiddleware):
    """What Stripe does before any endpoint: the key check, ``Request-Id`` and
    ``Stripe-Version`` headers, Stripe's envelope for unknown URLs and refused requests."""

    def __init__(self, app: ASGIApp, settings: EmulatorSettings) -> None:
        super().__init__(app)
        self.settings = settings
        self._ids = itertools.count(1)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = f"req_emu{next(self._ids):014d}"

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"request-id", request_id.encode()),
                    (b"stripe-version", API_VERSION.encode()),
                ]
            await send(message)

        key = presented_key(Request(scope).headers)
        if key is None:
            response = stripe_error(StoreError(401, _MISSING_KEY))
        elif key not in self.settings.api_keys:
            response = stripe_error(StoreError(401, f"Invalid API Key provided: {mask_key(key)}"))
        else:
            await self.app(scope, receive, tagged)
            return
        await response(scope, receive, tagged)


class RequestLog(ApiMiddleware):
    """Records every API request (faulted ones too) with its status, for tests to count."""

    def __init__(self, app: ASGIApp, log: list[Obj]) -> None:
        super().__init__(app)
        self.log = log

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry: Obj = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "status": None,
        }
        self.log.append(entry)

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, noting)


async def _not_found(request: Request, exc: Exception) -> Response:
    message = (
        f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/."
    )
    return stripe_error(StoreError(404, message))


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    return stripe_error(exc)


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """The emulator as a starlette app; its store is ``app.state.store``, the requests it saw
    are ``app.state.requests``."""
    settings = settings or EmulatorSettings()
    requests: list[Obj] = []
    app = Starlette(
        routes=[*ROUTES, *CONTROL],
        exception_handlers={StoreError: _refused, 404: _not_found, 405: _not_found},
        # Outermost first: every request is logged, faulted ones too. The key is checked before
        # any fault, as Stripe's limits are per account; faults carry Request-Id like answers.
        middleware=[
            Middleware(RequestLog, log=requests),
            Middleware(StripeEdge, settings=settings),
            Middleware(FaultMiddleware, faults=settings.faults, error_body=stripe_fault),
        ],
    )
    app.state.settings = settings
    deliverer = WebhookDeliverer(
        "Stripe",
        delays=settings.webhook_retry_delays,
        scale=settings.webhook_delay_scale,
        timeout=settings.webhook_timeout_seconds,
    )
    app.state.store = StripeStore(settings.clock or time.time, deliverer)
    app.state.requests = requests
    return app
