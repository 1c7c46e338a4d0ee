"""A local Givebutter: ``/v1/transactions`` with its filters, Laravel paging, auth and rate limit.

Run it in a test::

    app = create_app(EmulatorSettings(api_keys=["gb-test"]))
    app.state.emulator.seed(count=7)
    with EmulatorServer(app) as server:
        ...  # point givebutter.transactions' base_url at server.url

What it reproduces: Bearer keys (401 ``{"message": "Unauthenticated."}``), ``per_page`` up to 100
(422 past it), the ``updatedAfter``/``createdAfter``/``transactedAfter`` (and ``...Before``)
filters, ``sortBy``/``sortByDesc``, ``{data, links, meta}`` pages whose ``links.next`` carries
only ``?page=N`` (Laravel's default), a per-minute limit answered with 429 + ``Retry-After``, and
``GET /v1/transactions/{id}``. Control plane (:mod:`core.emulation.records`): ``/_emulator/seed``,
``/_emulator/state``, ``/_emulator/faults``, ``/_emulator/reset``,
``PATCH /_emulator/transactions/{id}``.
"""

from __future__ import annotations

import math
import random
import re
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.emulation import json_response
from core.emulation.records import (
    Faker,
    Record,
    RecordId,
    RecordsSettings,
    RecordsState,
    records_app,
)

_FILTERS = {
    "transactedAfter": ("transacted_at", "after"),
    "transactedBefore": ("transacted_at", "before"),
    "createdAfter": ("created_at", "after"),
    "createdBefore": ("created_at", "before"),
    "updatedAfter": ("updated_at", "after"),
    "updatedBefore": ("updated_at", "before"),
}
_SORTS = {"amount", "transacted_at", "created_at", "contact_name"}


class EmulatorSettings(RecordsSettings):
    api_keys: list[str] = Field(default_factory=lambda: ["emulator-givebutter-key"])
    requests_per_minute: int = Field(default=500, ge=1)
    rate_window_seconds: float = Field(default=60.0, gt=0)  # tests shorten the minute
    default_per_page: int = 20


def stamp(moment: datetime) -> str:
    """Givebutter's timestamps: ISO 8601 with an explicit UTC offset, whole seconds."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class GivebutterState(RecordsState[EmulatorSettings]):
    """Everything the emulated account holds; tests may use it directly."""

    collection = "transactions"
    default_seed = 7
    not_found = {"message": "Transaction not found."}

    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def faker(self, total: int) -> Faker:
        """An hour apart, from 30 days ago."""
        start = self.now() - timedelta(days=30)

        def fake(rng: random.Random, index: int, number: int) -> Record:
            return fake_transaction(rng, number, start + timedelta(hours=number))

        return fake

    def update(self, record_id: RecordId, changes: Record) -> Record:
        """Change a transaction as Givebutter would (a refund, an edit): ``updated_at`` moves."""
        record = super().update(record_id, changes)
        record["updated_at"] = stamp(self.now())
        return record

    def reset(self) -> None:
        super().reset()
        self.windows.clear()


# --- realistic data ---------------------------------------------------------------------------

_PEOPLE = [
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
    ("Katherine", "Johnson"),
    ("Alan", "Turing"),
    ("Mary", "Jackson"),
    ("Dorothy", "Vaughan"),
    ("Rosalind", "Franklin"),
    ("Hedy", "Lamarr"),
]
_PLACES = [
    ("12 Mission St", "Phoenix", "AZ", "85004"),
    ("400 Larimer St", "Denver", "CO", "80202"),
    ("9 Elm Ave", "Austin", "TX", "78701"),
    ("77 Pine Rd", "Portland", "OR", "97205"),
]
_CAMPAIGNS = [(4101, "SPRING25", "Spring Appeal"), (4102, "GALA25", "Annual Gala")]
_FUNDS = [(31, "GENERAL"), (32, "SCHOLAR"), (None, None)]


def fake_transaction(rng: random.Random, number: int, when: datetime) -> dict[str, Any]:
    """One plausible succeeded card or ACH donation, amounts in major units."""
    first, last = rng.choice(_PEOPLE)
    street, city, state, zipcode = rng.choice(_PLACES)
    campaign_id, campaign_code, campaign_title = rng.choice(_CAMPAIGNS)
    fund_id, fund_code = rng.choice(_FUNDS)
    gift = float(rng.choice([10, 25, 50, 100, 250]))
    fee = round(gift * 0.029 + 0.30, 2)
    covered = fee if rng.random() < 0.5 else 0.0
    amount = round(gift + covered, 2)
    recurring = rng.random() < 0.3
    method = rng.choice(["card", "card", "ach", "paypal"])
    tid = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(16))
    return {
        "id": tid,
        "number": f"{number:06d}",
        "campaign_id": campaign_id,
        "campaign_code": campaign_code,
        "campaign_title": campaign_title,
        "team_id": None,
        "team_name": None,
        "member_id": None,
        "member_name": None,
        "fund_id": fund_id,
        "fund_code": fund_code,
        "plan_id": f"pl_{number:05d}" if recurring else None,
        "pledge_id": None,
        "contact_id": 9000 + _PEOPLE.index((first, last)),
        "first_name": first,
        "last_name": last,
        "company": None,
        "company_name": None,
        "email": f"{first}.{last}@example.org".lower(),
        "phone": "+15555550100",
        "address": {
            "address_1": street,
            "address_2": None,
            "city": city,
            "state": state,
            "zipcode": zipcode,
            "country": "US",
        },
        "status": "succeeded",
        "method": method,
        "payment_method": method,
        "is_offline": False,
        "amount": amount,
        "fee": fee,
        "fee_covered": covered,
        "donated": gift,
        "payout": round(amount - fee, 2),
        "currency": "USD",
        "transacted_at": stamp(when),
        "created_at": stamp(when),
        "updated_at": stamp(when),
        "timezone": "America/Phoenix",
        "captured": True,
        "captured_at": stamp(when),
        "refunded": False,
        "refunded_at": None,
        "is_recurring": recurring,
        "dedication": None,
        "giving_space": None,
        "custom_fields": [],
        "utm_parameters": [],
        "external_id": None,
        "fair_market_value_amount": None,
        "tax_deductible_amount": f"{gift:.2f}",
        "line_items": [
            {
                "type": "donation",
                "subtype": "donation",
                "description": "Recurring donation" if recurring else "One-time donation",
                "quantity": 1,
                "price": gift,
                "discount": 0,
                "total": gift,
                "created_at": stamp(when),
                "updated_at": stamp(when),
            }
        ],
    }


# --- the API ----------------------------------------------------------------------------------


def _error(
    message: str,
    status: int,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status, headers)


def _guard(request: Request) -> Response | None:
    """Auth, injected failures and the per-minute limit, in the order Givebutter applies them."""
    state: GivebutterState = request.app.state.emulator
    header = request.headers.get("Authorization", "")
    key = header[7:] if header.startswith("Bearer ") else None
    if key not in state.settings.api_keys:
        return _error("Unauthenticated.", 401)
    assert key is not None
    if state.fail_next:
        return _error("Server Error", state.fail_next.pop(0))
    limit, window = state.settings.requests_per_minute, state.settings.rate_window_seconds
    now = time.time()
    with state.lock:
        started, used = state.windows.get(key, (now, 0))
        if now >= started + window:
            started, used = now, 0
        if used >= limit:
            wait = max(1, math.ceil(started + window - now))
            return _error(
                "Too Many Attempts.",
                429,
                headers={
                    "Retry-After": str(wait),
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(started + window)),
                },
            )
        state.windows[key] = (started, used + 1)
    return None


def _rate_headers(request: Request) -> dict[str, str]:
    state: GivebutterState = request.app.state.emulator
    key = request.headers.get("Authorization", "")[7:]
    used = state.windows.get(key, (0.0, 0))[1]
    limit = state.settings.requests_per_minute
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - used))}


def _selected(state: GivebutterState, query: dict[str, str]) -> list[dict[str, Any]] | Response:
    rows = list(state.records.values())
    for param, (column, side) in _FILTERS.items():
        if not query.get(param):
            continue
        try:
            bound = _moment(query[param])
        except ValueError:
            words = re.sub(r"(?=[A-Z])", " ", param).lower()
            text = f"The {words} field must be a valid date."
            return _error(text, 422, {param: [text]})
        if side == "after":
            rows = [r for r in rows if _moment(r[column]) > bound]
        else:
            rows = [r for r in rows if _moment(r[column]) < bound]
    if query.get("method"):
        rows = [r for r in rows if r["method"] == query["method"]]
    if query.get("contacts"):
        wanted = {c.strip() for c in query["contacts"].split(",")}
        rows = [r for r in rows if str(r["contact_id"]) in wanted]
    descending = "sortByDesc" in query
    column = query.get("sortByDesc") or query.get("sortBy") or "transacted_at"
    if column not in _SORTS:
        text = "The selected sort by is invalid."
        return _error(text, 422, {"sortBy": [text]})
    if "sortBy" not in query and "sortByDesc" not in query:
        descending = True  # newest first unless asked otherwise

    def order(row: dict[str, Any]) -> Any:
        if column == "contact_name":
            return f"{row['first_name']} {row['last_name']}"
        return row[column]

    return sorted(rows, key=order, reverse=descending)


async def list_transactions(request: Request) -> Response:
    state: GivebutterState = request.app.state.emulator
    if (refused := _guard(request)) is not None:
        state.log(request, refused.status_code)
        return refused
    query = dict(request.query_params)
    try:
        page = int(query.get("page", "1"))
        per_page = int(query.get("per_page", str(state.settings.default_per_page)))
    except ValueError:
        state.log(request, 422)
        return _error("The page field must be an integer.", 422, {"page": ["must be an integer"]})
    if per_page > state.settings.max_per_page or per_page < 1 or page < 1:
        text = f"The per page field must be between 1 and {state.settings.max_per_page}."
        state.log(request, 422)
        return _error(text, 422, {"per_page": [text]})
    rows = _selected(state, query)
    if isinstance(rows, Response):
        state.log(request, rows.status_code)
        return rows
    total = len(rows)
    last_page = max(1, math.ceil(total / per_page))
    chunk = rows[(page - 1) * per_page : page * per_page]
    path = f"{str(request.base_url).rstrip('/')}/v1/transactions"

    def link(number: int) -> str | None:
        return f"{path}?page={number}" if 1 <= number <= last_page else None

    body = {
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
            "path": path,
            "per_page": per_page,
            "to": (page - 1) * per_page + len(chunk) if chunk else None,
            "total": total,
            "unfiltered_total": len(state.records),
            "links": [
                {"url": link(n), "label": str(n), "active": n == page}
                for n in range(1, last_page + 1)
            ],
        },
    }
    state.log(request, 200)
    return json_response(body, headers=_rate_headers(request))


async def get_transaction(request: Request) -> Response:
    state: GivebutterState = request.app.state.emulator
    if (refused := _guard(request)) is not None:
        state.log(request, refused.status_code)
        return refused
    record = state.records.get(request.path_params["tid"])
    state.log(request, 200 if record else 404)
    if record is None:
        return _error("Transaction not found.", 404)
    return json_response(record, headers=_rate_headers(request))


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """The emulated Givebutter API; its state is ``app.state.emulator``."""
    state = GivebutterState(settings or EmulatorSettings())
    routes = [
        Route("/v1/transactions", list_transactions),
        Route("/v1/transactions/{tid}", get_transaction),
    ]
    return records_app(state, routes)
