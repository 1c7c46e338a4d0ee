"""A local Donorbox: ``/api/v1/donations`` with Basic auth, its filters and bare-array pages.

Run it in a test::

    app = create_app(EmulatorSettings(credentials={"ops@example.org": "db-test"}))
    app.state.emulator.seed(count=7)
    with EmulatorServer(app) as server:
        ...  # point donorbox.donations' base_url at server.url

What it reproduces: HTTP Basic with the login email and API key (401 with Devise's
``{"error": "You need to sign in or sign up before continuing."}``), ``page``/``per_page``
(default 50, capped at 100), ``date_from``/``date_to`` (whole days, inclusive), ``order``
(newest first by default), the ``campaign_id``, ``id``, ``email``, ``donor_id`` filters, and
donations shaped like the published samples (amounts as decimal strings, ``stripe_charge_id``,
nested ``donor`` and ``campaign``). Control plane (:mod:`core.emulation.records`):
``/_emulator/seed``, ``/_emulator/state``, ``/_emulator/faults``, ``/_emulator/reset``,
``PATCH /_emulator/donations/{id}``.
"""

from __future__ import annotations

import base64
import binascii
import random
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.emulation import json_response
from core.emulation.records import Faker, Record, RecordsSettings, RecordsState, records_app

UNAUTHENTICATED = "You need to sign in or sign up before continuing."


class EmulatorSettings(RecordsSettings):
    credentials: dict[str, str] = Field(
        default_factory=lambda: {"ops@example.org": "emulator-donorbox-key"},
        description="login email -> API key",
    )


def stamp(moment: datetime) -> str:
    """Donorbox's timestamps: Rails' ISO 8601 in UTC with milliseconds and ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _day(text: str) -> date:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()


def _money(value: float) -> str:
    return f"{value:.1f}" if value == int(value) else f"{value:.2f}"


def _formatted(value: float) -> str:
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"


class DonorboxState(RecordsState[EmulatorSettings]):
    """Everything the emulated organization holds; tests may use it directly."""

    collection = "donations"
    int_ids = True
    default_seed = 11

    def faker(self, total: int) -> Faker:
        """One donation a day, up to yesterday."""
        start = self.now() - timedelta(days=total + 1)

        def fake(rng: random.Random, index: int, number: int) -> Record:
            return fake_donation(
                rng, number, start + timedelta(days=index, hours=rng.randint(0, 12))
            )

        return fake


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
    ("123 6th St.", "Melbourne", "FL", "32904"),
    ("400 Larimer St", "Denver", "CO", "80202"),
    ("9 Elm Ave", "Austin", "TX", "78701"),
    ("77 Pine Rd", "Portland", "OR", "97205"),
]
_CAMPAIGNS = [(1, "General Giving"), (2, "Clean Water 2025")]
_DESIGNATIONS = ["General Fund", "Scholarships", None]


def fake_donation(rng: random.Random, number: int, when: datetime) -> dict[str, Any]:
    """One plausible paid donation: by card through Stripe, or through PayPal."""
    first, last = rng.choice(_PEOPLE)
    street, city, state, zip_code = rng.choice(_PLACES)
    campaign_id, campaign_name = rng.choice(_CAMPAIGNS)
    amount = float(rng.choice([10, 25, 50, 100, 250]))
    fee = round(amount * 0.029 + 0.30, 2)
    via_stripe = rng.random() < 0.75
    recurring = rng.random() < 0.3
    charge = "ch_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
    return {
        "id": number,
        "campaign": {"id": campaign_id, "name": campaign_name},
        "donor": {
            "id": 50 + _PEOPLE.index((first, last)),
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}@example.org".lower(),
            "phone": "+1 555 555 0100",
            "address": street,
            "address_line_2": None,
            "city": city,
            "state": state,
            "zip_code": zip_code,
            "country": "United States",
            "employer": None,
            "occupation": None,
        },
        "amount": _money(amount),
        "formatted_amount": _formatted(amount),
        "converted_amount": _money(amount),
        "formatted_converted_amount": _formatted(amount),
        "recurring": recurring,
        "first_recurring_donation": recurring and rng.random() < 0.5,
        "amount_refunded": "0.0",
        "formatted_amount_refunded": "$0",
        "stripe_charge_id": charge if via_stripe else None,
        "status": "paid",
        "donation_type": "stripe" if via_stripe else "paypal",
        "donation_date": stamp(when),
        "anonymous_donation": False,
        "gift_aid": False,
        "designation": rng.choice(_DESIGNATIONS),
        "join_mailing_list": rng.random() < 0.5,
        "comment": None,
        "donating_company": None,
        "currency": "USD",
        "converted_currency": "USD",
        "utm_campaign": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_term": None,
        "utm_content": None,
        "processing_fee": fee,
        "formatted_processing_fee": _formatted(fee),
        "questions": [],
    }


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


def _filtered(state: DonorboxState, query: dict[str, str]) -> list[dict[str, Any]]:
    rows = list(state.records.values())
    if query.get("date_from"):
        since = date.fromisoformat(query["date_from"][:10])
        rows = [r for r in rows if _day(r["donation_date"]) >= since]
    if query.get("date_to"):
        until = date.fromisoformat(query["date_to"][:10])
        rows = [r for r in rows if _day(r["donation_date"]) <= until]
    exact: dict[str, Callable[[dict[str, Any]], str]] = {
        "campaign_id": lambda r: str(r["campaign"]["id"]),
        "id": lambda r: str(r["id"]),
        "donor_id": lambda r: str(r["donor"]["id"]),
        "email": lambda r: str(r["donor"]["email"]).lower(),
    }
    for param, value_of in exact.items():
        if query.get(param):
            wanted = query[param].lower() if param == "email" else query[param]
            rows = [r for r in rows if value_of(r) == wanted]
    descending = query.get("order", "desc").lower() != "asc"
    return sorted(rows, key=lambda r: (r["donation_date"], r["id"]), reverse=descending)


async def list_donations(request: Request) -> Response:
    state: DonorboxState = request.app.state.emulator
    query = dict(request.query_params)

    def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        state.log(request, status)
        return json_response(body, status, headers)

    if not _authorized(request):
        return answer({"error": UNAUTHENTICATED}, 401, {"WWW-Authenticate": 'Basic realm="API"'})
    if state.fail_next:
        return answer({"error": "We're sorry, but something went wrong."}, state.fail_next.pop(0))
    try:
        page = max(1, int(query.get("page", "1")))
        per_page = min(
            state.settings.max_per_page,
            max(1, int(query.get("per_page", str(state.settings.default_per_page)))),
        )
        rows = _filtered(state, query)
    except ValueError as error:
        return answer({"error": f"invalid parameter: {error}"}, 400)
    return answer(rows[(page - 1) * per_page : page * per_page])


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """The emulated Donorbox API; its state is ``app.state.emulator``."""
    state = DonorboxState(settings or EmulatorSettings())
    return records_app(state, [Route("/api/v1/donations", list_donations)])
