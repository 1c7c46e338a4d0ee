"""A local Givebutter: ``/v1/transactions`` with its filters, Laravel paging, auth and rate limit.

Run it in a test::

    app = create_app(EmulatorSettings(api_keys=["gb-test"]))
    app.state.emulator.seed_kinds(*KINDS)  # one transaction in every state
    with EmulatorServer(app) as server:
        ...  # point givebutter.transactions' base_url at server.url

What it reproduces, from Givebutter's published OpenAPI (``tests/contracts/schemas/givebutter/``):
the list item with its nested ``transactions[]`` entry (:mod:`.shapes`), Bearer keys (401
``{"message": "Unauthenticated."}``), ``per_page`` up to 100 (422 past it), the declared filters
(``transacted``/``created``/``updated``/``checkDeposited`` ``After``/``Before``, ``contacts``,
``method``, ``scope``), ``sortBy``/``sortByDesc``, ``{data, links, meta}`` pages whose
``links.next`` carries only ``?page=N`` (Laravel's default), a per-minute limit answered with
429 + ``Retry-After``, ``GET /v1/transactions/{id}``, and ``/v1/webhooks`` (list, create, show,
update, delete: :mod:`.webhooks`), whose webhooks are delivered to. Every refusal and fault
speaks Laravel (:mod:`.errors`). Control plane (:mod:`core.emulation.records`): ``/_emulator/seed``,
``/_emulator/state``, ``/_emulator/faults``, ``/_emulator/reset``,
``PATCH /_emulator/transactions/{id}``, ``POST /_emulator/transactions/{id}/refund``
(``{"amount": ...}`` for a partial refund), and webhooks as a person adds them in the dashboard
(:mod:`core.emulation.subscribers`: ``/_emulator/webhooks``, ``/_emulator/deliveries``): new
succeeded transactions and refunds are delivered to them, retried on a growing schedule
(:class:`~.store.GivebutterState`).
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.givebutter.emulator import webhooks
from connectors.givebutter.emulator.errors import givebutter_error, invalid, refusal
from connectors.givebutter.emulator.shapes import stamp
from connectors.givebutter.emulator.store import EmulatorSettings, GivebutterState
from core.emulation import json_response
from core.emulation.listings import query_key
from core.emulation.records import records_app
from core.emulation.subscribers import subscriber_routes

__all__ = ["EmulatorSettings", "GivebutterState", "create_app"]

_FILTERS = {
    "transactedAfter": ("transacted_at", "after"),
    "transactedBefore": ("transacted_at", "before"),
    "createdAfter": ("created_at", "after"),
    "createdBefore": ("created_at", "before"),
    "updatedAfter": ("updated_at", "after"),
    "updatedBefore": ("updated_at", "before"),
    "checkDepositedAfter": ("check_deposited_at", "after"),
    "checkDepositedBefore": ("check_deposited_at", "before"),
}
_SORTS = {"amount", "transacted_at", "created_at", "contact_name"}
_SCOPES = {"all", "benefiting", "chapters"}
#: The query names that choose a page, not the listing.
_PAGING = frozenset({"page", "per_page"})


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _state(request: Request) -> GivebutterState:
    state: GivebutterState = request.app.state.emulator
    return state


def _guard(request: Request) -> Response | None:
    """Auth, injected failures and the per-minute limit, in the order Givebutter applies them."""
    state = _state(request)
    header = request.headers.get("Authorization", "")
    key = header[7:] if header.startswith("Bearer ") else None
    if key is None or key not in state.settings.api_keys:
        return refusal("Unauthenticated.", 401)
    if state.fail_next:
        return givebutter_error(state.fail_next.pop(0), "", {})
    limit, window = state.settings.requests_per_minute, state.settings.rate_window_seconds
    now = time.time()
    with state.lock:
        started, used = state.windows.get(key, (now, 0))
        if now >= started + window:
            started, used = now, 0
        if used >= limit:
            wait = max(1, math.ceil(started + window - now))
            headers = {
                "Retry-After": str(wait),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(started + window)),
            }
            return refusal("Too Many Attempts.", 429, headers)
        state.windows[key] = (started, used + 1)
    return None


def _rate_headers(request: Request) -> dict[str, str]:
    state = _state(request)
    key = request.headers.get("Authorization", "")[7:]
    used = state.windows.get(key, (0.0, 0))[1]
    limit = state.settings.requests_per_minute
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - used))}


def _filtered(rows: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]] | Response:
    for param, (column, side) in _FILTERS.items():
        if not query.get(param):
            continue
        try:
            bound = _moment(query[param])
        except ValueError:
            words = re.sub(r"(?=[A-Z])", " ", param).lower()
            return invalid(param, f"The {words} field must be a valid date.")
        # As SQL compares: a transaction without the date (an online gift has no check
        # deposit) matches neither side.
        dated = [r for r in rows if r.get(column)]
        if side == "after":
            rows = [r for r in dated if _moment(r[column]) > bound]
        else:
            rows = [r for r in dated if _moment(r[column]) < bound]
    if query.get("method"):
        rows = [r for r in rows if r["method"] == query["method"]]
    if query.get("contacts"):
        wanted = {c.strip() for c in query["contacts"].split(",")}
        rows = [r for r in rows if str(r["contact_id"]) in wanted]
    if query.get("scope") and query["scope"] not in _SCOPES:
        return invalid("scope", "The selected scope is invalid.")
    return rows


def _sorted(rows: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]] | Response:
    descending = "sortByDesc" in query
    column = query.get("sortByDesc") or query.get("sortBy") or "transacted_at"
    if column not in _SORTS:
        name = "sortByDesc" if descending else "sortBy"
        return invalid(name, "The selected sort by is invalid.")
    if "sortBy" not in query and "sortByDesc" not in query:
        descending = True  # newest first unless asked otherwise

    def order(row: dict[str, Any]) -> Any:
        if column == "contact_name":
            return f"{row['first_name']} {row['last_name']}"
        return row[column]

    return sorted(rows, key=order, reverse=descending)


def _page_size(query: dict[str, str], settings: EmulatorSettings) -> tuple[int, int] | Response:
    try:
        page = int(query.get("page", "1"))
        per_page = int(query.get("per_page", str(settings.default_per_page)))
    except ValueError:
        return invalid("page", "The page field must be an integer.")
    if per_page > settings.max_per_page or per_page < 1 or page < 1:
        text = f"The per page field must be between 1 and {settings.max_per_page}."
        return invalid("per_page", text)
    return page, per_page


def _envelope(
    chunk: list[dict[str, Any]], page: int, per_page: int, total: int, unfiltered: int, path: str
) -> dict[str, Any]:
    """Laravel's ``ResourceCollection`` of a ``LengthAwarePaginator``: data, links, meta."""
    last_page = max(1, math.ceil(total / per_page))

    def link(number: int) -> str | None:
        return f"{path}?page={number}" if 1 <= number <= last_page else None

    numbered = [
        {"url": link(n), "label": str(n), "active": n == page} for n in range(1, last_page + 1)
    ]
    return {
        "data": chunk,
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": link(page - 1),
            "next": link(page + 1),
        },
        "meta": {
            "current_page": page,
            "from": (page - 1) * per_page + 1 if chunk else None,
            "last_page": last_page,
            "links": [
                {"url": link(page - 1), "label": "&laquo; Previous", "active": False},
                *numbered,
                {"url": link(page + 1), "label": "Next &raquo;", "active": False},
            ],
            "path": path,
            "per_page": per_page,
            "to": (page - 1) * per_page + len(chunk) if chunk else None,
            "total": total,
            "unfiltered_total": unfiltered,
        },
    }


def _listing(state: GivebutterState, query: dict[str, str]) -> list[dict[str, Any]] | Response:
    """The filtered, sorted transactions, kept between pages until one changes."""

    def build() -> list[dict[str, Any]]:
        rows = _filtered(list(state.records.values()), query)
        if isinstance(rows, Response):
            raise _Refused(rows)
        rows = _sorted(rows, query)
        if isinstance(rows, Response):
            raise _Refused(rows)
        return rows

    try:
        return state.listings.get(query_key(query, _PAGING), build)
    except _Refused as refused:
        return refused.answer


class _Refused(Exception):
    """A filter or sort the API refuses: its answer, which is not kept."""

    def __init__(self, answer: Response) -> None:
        super().__init__(answer.status_code)
        self.answer = answer


async def list_transactions(request: Request) -> Response:
    state = _state(request)
    answer = _list(request, state)
    state.log(request, answer.status_code)
    return answer


def _list(request: Request, state: GivebutterState) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    query = dict(request.query_params)
    size = _page_size(query, state.settings)
    if isinstance(size, Response):
        return size
    page, per_page = size
    rows = _listing(state, query)
    if isinstance(rows, Response):
        return rows
    chunk = rows[(page - 1) * per_page : page * per_page]
    path = f"{str(request.base_url).rstrip('/')}/v1/transactions"
    body = _envelope(chunk, page, per_page, len(rows), len(state.records), path)
    return json_response(body, headers=_rate_headers(request))


async def get_transaction(request: Request) -> Response:
    state = _state(request)
    if (refused := _guard(request)) is not None:
        state.log(request, refused.status_code)
        return refused
    record = state.records.get(request.path_params["tid"])
    state.log(request, 200 if record else 404)
    if record is None:
        return refusal("Transaction not found.", 404)
    return json_response(record, headers=_rate_headers(request))


# --- webhooks (webhooks.index|store|show|update|destroy) ------------------------------------


async def list_webhooks(request: Request) -> Response:
    state = _state(request)
    answer = _guard(request) or _webhook_page(request, state)
    state.log(request, answer.status_code)
    return answer


def _webhook_page(request: Request, state: GivebutterState) -> Response:
    size = _page_size(dict(request.query_params), state.settings)
    if isinstance(size, Response):
        return size
    page, per_page = size
    rows = sorted(state.webhooks.values(), key=lambda w: int(w["id"]))
    chunk = rows[(page - 1) * per_page : page * per_page]
    path = f"{str(request.base_url).rstrip('/')}/v1/webhooks"
    body = _envelope(chunk, page, per_page, len(rows), len(rows), path)
    del body["meta"]["unfiltered_total"]  # only the transactions list has it
    return json_response(body, headers=_rate_headers(request))


async def create_webhook(request: Request) -> Response:
    state = _state(request)
    answer = _guard(request) or await _stored_webhook(request, state, None)
    state.log(request, answer.status_code)
    return answer


async def show_webhook(request: Request) -> Response:
    state = _state(request)
    found = state.webhooks.get(request.path_params["wid"])
    answer = _guard(request) or (
        json_response(found) if found else refusal("Webhook not found.", 404)
    )
    state.log(request, answer.status_code)
    return answer


async def update_webhook(request: Request) -> Response:
    state = _state(request)
    found = state.webhooks.get(request.path_params["wid"])
    answer = _guard(request) or (
        await _stored_webhook(request, state, found)
        if found
        else refusal("Webhook not found.", 404)
    )
    state.log(request, answer.status_code)
    return answer


async def delete_webhook(request: Request) -> Response:
    state = _state(request)
    answer = _guard(request) or (
        Response(status_code=200)
        if state.delete_webhook(request.path_params["wid"])
        else refusal("Webhook not found.", 404)
    )
    state.log(request, answer.status_code)
    return answer


async def _stored_webhook(
    request: Request, state: GivebutterState, current: dict[str, Any] | None
) -> Response:
    """A webhook made from the body (``current`` is None) or ``current`` changed by it."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    refused = webhooks.problem(body, update=current is not None)
    if refused is not None:
        return invalid(*refused)
    at = stamp(state.now())
    if current is None:
        made = webhooks.resource(str(len(state.webhooks) + 1), body, at)
    else:
        made = {**current, **webhooks.resource(current["id"], body, at)}
        made["created_at"] = current["created_at"]
        made["enabled"] = body.get("enabled", current["enabled"])
    return json_response(state.save_webhook(made), headers=_rate_headers(request))


async def refund_transaction(request: Request) -> Response:
    """Control plane: refund a transaction as a donor's refund in the dashboard would."""
    state = _state(request)
    tid = request.path_params["tid"]
    if tid not in state.records:
        return json_response(state.not_found, 404)
    body = await request.json() if await request.body() else {}
    return json_response(state.refund(tid, body.get("amount")))


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """The emulated Givebutter API; its state is ``app.state.emulator``."""
    state = GivebutterState(settings or EmulatorSettings())
    routes = [
        Route("/v1/transactions", list_transactions),
        Route("/v1/transactions/{tid}", get_transaction),
        Route("/v1/webhooks", list_webhooks),
        Route("/v1/webhooks", create_webhook, methods=["POST"]),
        Route("/v1/webhooks/{wid}", show_webhook),
        Route("/v1/webhooks/{wid}", update_webhook, methods=["PUT"]),
        Route("/v1/webhooks/{wid}", delete_webhook, methods=["DELETE"]),
        Route("/_emulator/transactions/{tid}/refund", refund_transaction, methods=["POST"]),
        *subscriber_routes(lambda request: state.subscribers),
    ]
    return records_app(state, routes, error_body=givebutter_error)
