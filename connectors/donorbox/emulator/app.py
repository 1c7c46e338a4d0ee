"""A local Donorbox: ``/api/v1/donations`` with Basic auth, its filters and bare-array pages.

Run it in a test::

    app = create_app(EmulatorSettings(credentials={"ops@example.org": "db-test"}))
    app.state.emulator.seed(count=7)
    with EmulatorServer(app) as server:
        ...  # point donorbox.donations' base_url at server.url

What it reproduces (README of ``donorbox/donorbox-api``, commit e6b4daf): HTTP Basic with the
login email and API key (401 with Devise's ``{"error": "You need to sign in or sign up before
continuing."}``), ``page``/``per_page`` (default 50, maximum 100; a larger ``per_page`` falls
back to the default), ``date_from``/``date_to`` (whole days, inclusive, in the four documented
formats), ``order`` (newest first by default), the ``campaign_id``, ``campaign_name``, ``id``,
``email``, ``first_name``, ``last_name``, ``donor_id`` and ``amount[<currency>][min|max]``
filters, and donations shaped like the samples (:mod:`.shapes`). What is undocumented is a switch
of :class:`~.store.EmulatorSettings`: the key set, the status a refund shows, the fault dialect
(:mod:`.faults`). Control plane (:mod:`core.emulation.records`): ``/_emulator/seed``,
``/_emulator/state``, ``/_emulator/faults``, ``/_emulator/reset``,
``PATCH /_emulator/donations/{id}``, ``POST /_emulator/donations/{id}/refund``
(``{"amount": "5.0"}``, or ``{}`` for all of it), and the custom webhooks a person would add in
the dashboard (:mod:`core.emulation.subscribers`: ``/_emulator/webhooks``,
``/_emulator/deliveries``): each new donation is delivered to them, signed, and retried on a
growing schedule (:class:`~.store.DonorboxState`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.donorbox.emulator.faults import error_body
from connectors.donorbox.emulator.shapes import rendered, stamp
from connectors.donorbox.emulator.store import DonorboxState, EmulatorSettings
from core.emulation import json_response
from core.emulation.listings import query_key
from core.emulation.records import records_app
from core.emulation.subscribers import subscriber_routes

__all__ = ["DonorboxState", "EmulatorSettings", "create_app", "stamp"]

UNAUTHENTICATED = "You need to sign in or sign up before continuing."
_AMOUNT_BOUND = re.compile(r"^amount\[(?P<currency>[A-Za-z]{3})\]\[(?P<bound>min|max)\]$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d-%m-%Y")
#: The query names that choose a page, not the listing.
_PAGING = frozenset({"page", "per_page"})


def _day(text: str) -> date:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()


def _query_date(text: str) -> date:
    """A ``date_from``/``date_to`` in any of the README's formats (YYYY-mm-dd YYYY/mm/dd
    YYYYmmdd dd-mm-YYYY)."""
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    msg = f"date {text!r}"
    raise ValueError(msg)


def _authorized(request: Request) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, key = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    credentials: dict[str, str] = request.app.state.emulator.settings.credentials
    return credentials.get(user) == key


_EXACT: dict[str, Callable[[dict[str, Any]], str]] = {
    "campaign_id": lambda r: str(r["campaign"]["id"]),
    "campaign_name": lambda r: str(r["campaign"]["name"]).lower(),
    "id": lambda r: str(r["id"]),
    "donor_id": lambda r: str(r["donor"]["id"]),
    "email": lambda r: str(r["donor"]["email"]).lower(),
    "first_name": lambda r: str(r["donor"]["first_name"]).lower(),
    "last_name": lambda r: str(r["donor"]["last_name"]).lower(),
}


def _by_amount(rows: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    for param, value in query.items():
        match = _AMOUNT_BOUND.match(param)
        if match is None or not value:
            continue
        bound = Decimal(value)
        currency = match["currency"].upper()
        above = match["bound"] == "min"
        rows = [
            r
            for r in rows
            if str(r["currency"]).upper() == currency
            and (Decimal(r["amount"]) >= bound if above else Decimal(r["amount"]) <= bound)
        ]
    return rows


def _filtered(state: DonorboxState, query: dict[str, str]) -> list[dict[str, Any]]:
    rows = list(state.records.values())
    if query.get("date_from"):
        since = _query_date(query["date_from"])
        rows = [r for r in rows if _day(r["donation_date"]) >= since]
    if query.get("date_to"):
        until = _query_date(query["date_to"])
        rows = [r for r in rows if _day(r["donation_date"]) <= until]
    for param, value_of in _EXACT.items():
        if query.get(param):
            wanted = query[param].lower()
            rows = [r for r in rows if value_of(r).lower() == wanted]
    rows = _by_amount(rows, query)
    descending = query.get("order", "desc").lower() != "asc"
    return sorted(rows, key=lambda r: (r["donation_date"], r["id"]), reverse=descending)


def _page_size(query: dict[str, str], settings: EmulatorSettings) -> int:
    """``per_page``; over the maximum it falls back to the default, as the README says."""
    asked = int(query.get("per_page", str(settings.default_per_page)))
    if asked > settings.max_per_page:
        return settings.default_per_page
    return max(1, asked)


async def list_donations(request: Request) -> Response:
    state: DonorboxState = request.app.state.emulator
    settings = state.settings
    query = dict(request.query_params)

    def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        state.log(request, status)
        return json_response(body, status, headers)

    if not _authorized(request):
        return answer({"error": UNAUTHENTICATED}, 401, {"WWW-Authenticate": 'Basic realm="API"'})
    if state.fail_next:
        status = state.fail_next.pop(0)
        state.log(request, status)
        return error_body(settings.errors)(status, "", {})
    try:
        page = max(1, int(query.get("page", "1")))
        per_page = _page_size(query, settings)
        rows = state.listings.get(query_key(query, _PAGING), lambda: _filtered(state, query))
    except (ValueError, InvalidOperation) as error:
        return answer({"error": f"invalid parameter: {error}"}, 400)
    shown = rows[(page - 1) * per_page : page * per_page]
    return answer([rendered(r, settings.keys, settings.refund_status) for r in shown])


async def refund_donation(request: Request) -> Response:
    """Control plane: a refund made in the Donorbox dashboard."""
    state: DonorboxState = request.app.state.emulator
    record_id = request.path_params["record_id"]
    if record_id not in state.records:
        return json_response(state.not_found, 404)
    body = await request.json() if await request.body() else {}
    return json_response(state.refund(record_id, body.get("amount")))


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """The emulated Donorbox API; its state is ``app.state.emulator``."""
    state = DonorboxState(settings or EmulatorSettings())

    def fault(status: int, message: str, headers: dict[str, str]) -> Response:
        # Read at each fault, so a test can switch the dialect while the emulator runs.
        return error_body(state.settings.errors)(status, message, headers)

    routes = [
        Route("/api/v1/donations", list_donations),
        Route("/_emulator/donations/{record_id:int}/refund", refund_donation, methods=["POST"]),
        *subscriber_routes(lambda request: state.subscribers),
    ]
    return records_app(state, routes, error_body=fault)
