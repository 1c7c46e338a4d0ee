"""The other ``/api`` endpoints of the Virtuous emulator: transactions, gifts, projects, queries.

Direct reads answer 404 with an empty body for a missing id. Transaction POSTs answer 200 with
an empty body and only park the payload (see :mod:`.transactions`). Query endpoints read
``skip``/``take`` from the query string (the body as a fallback); a take above ``query_max_take``
is clamped to it rather than refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.virtuous.emulator.contacts import (
    addresses_by_contact,
    contact_by_reference,
    create_address,
    create_individual,
    find_contact,
    get_address,
    get_contact,
    get_individual,
    individuals_by_contact,
    put_address,
    put_contact,
    put_individual,
)
from connectors.virtuous.emulator.gateway import (
    Principal,
    api,
    emulator,
    error,
    not_found,
    object_body,
    read_body,
    rejected,
)
from connectors.virtuous.emulator.query import (
    CONTACT_PARAMS,
    GIFT_PARAMS,
    PROJECT_PARAMS,
    Param,
    QueryError,
    run_query,
)
from connectors.virtuous.emulator.shapes import (
    contact_full,
    contact_row,
    gift_full,
    gift_row,
    gift_webhook,
    project_json,
)
from connectors.virtuous.emulator.store import Designation, EmulatorState, Gift
from connectors.virtuous.emulator.transactions import (
    accept_contacts,
    accept_gifts,
    apply_gift_defaults,
    parse_date,
    parse_int,
    text,
)
from connectors.virtuous.emulator.webhooks import record_webhook
from core.emulation import empty_response, json_response

# --- transactions ----------------------------------------------------------------------------


def _batch(
    state: EmulatorState, items: Any, key: str, limit: int, noun: str
) -> list[Any] | Response:
    """The items of a batch body, or the 400 for one that is not a list or is over ``limit``."""
    if not isinstance(items, list):
        return error(state, 400, "The request is invalid.", {key: ["An error has occurred."]})
    if len(items) > limit:
        message = f"A batch may contain at most {limit} {noun}."
        return error(state, 400, "The request is invalid.", {key: [message]})
    return items


@api("gifts:write")
async def gift_transaction(request: Request, who: Principal) -> Response:
    """``POST /api/v2/Gift/Transaction``."""
    state = emulator(request)
    body, problem = await object_body(request, "transaction")
    if problem:
        return problem
    rejection = accept_gifts(state, state.settings, [body], org=who.org, batch=False)
    return rejected(state, rejection) if rejection else empty_response()


@api("gifts:write")
async def gift_transactions(request: Request, who: Principal) -> Response:
    """``POST /api/v2/Gift/Transactions``: all or nothing."""
    state = emulator(request)
    body, problem = await object_body(request, "giftTransactions")
    if problem:
        return problem
    limit = state.settings.gift_batch_max_size
    checked = _batch(state, body.get("transactions"), "transactions", limit, "transactions")
    if isinstance(checked, Response):
        return checked
    rejection = accept_gifts(
        state,
        state.settings,
        apply_gift_defaults(body),
        org=who.org,
        batch=True,
        import_name=text(body, "importname"),
    )
    return rejected(state, rejection) if rejection else empty_response()


@api("contacts:write")
async def contact_transaction(request: Request, who: Principal) -> Response:
    """``POST /api/Contact/Transaction``."""
    state = emulator(request)
    body, problem = await object_body(request, "contactTransaction")
    if problem:
        return problem
    rejection = accept_contacts(state, [body], org=who.org, batch=False)
    return rejected(state, rejection) if rejection else empty_response()


@api("contacts:write")
async def contact_batch(request: Request, who: Principal) -> Response:
    """``POST /api/Contact/Batch``: all or nothing."""
    state = emulator(request)
    body, problem = await object_body(request, "unmatchedContactsBindingModel")
    if problem:
        return problem
    key, limit = "unmatchedContactsBindingModel.contacts", state.settings.contact_batch_max_size
    contacts = _batch(state, body.get("contacts"), key, limit, "contacts")
    if isinstance(contacts, Response):
        return contacts
    source = body.get("referencesource")
    contacts = [
        {**c, "referencesource": source}
        if isinstance(c, dict) and source and not c.get("referencesource")
        else c
        for c in contacts
    ]
    rejection = accept_contacts(state, contacts, org=who.org, batch=True)
    return rejected(state, rejection) if rejection else empty_response()


# --- gifts and projects ----------------------------------------------------------------------


@api("gifts:read")
async def get_gift(request: Request, who: Principal) -> Response:
    """``GET /api/Gift/{id}``."""
    state = emulator(request)
    gift = state.gifts.get(request.path_params["gift_id"])
    return json_response(gift_full(state, gift)) if gift else not_found(state)


@api("gifts:read")
async def gift_by_transaction(request: Request, who: Principal) -> Response:
    """``GET /api/Gift/{transactionSource}/{transactionId}``: 404 until the import ran."""
    state, params = emulator(request), request.path_params
    gift = state.gift_by_transaction(params["source"], params["transaction_id"])
    return json_response(gift_full(state, gift)) if gift else not_found(state)


def reverse_gift(state: EmulatorState, gift: Gift, on: date, notes: str | None) -> Gift:
    """A "Reversing Transaction" gift that cancels ``gift`` (a refund), with negated amounts."""
    reversal = Gift(
        id=state.next_id("gift"),
        contact_id=gift.contact_id,
        contact_individual_id=gift.contact_individual_id,
        gift_type="Reversing Transaction",
        gift_date=on,
        amount=-gift.amount,
        currency_code=gift.currency_code,
        exchange_rate=gift.exchange_rate,
        batch=gift.batch,
        notes=notes,
        segment_code=gift.segment_code,
        reversed_gift_id=gift.id,
        is_tax_deductible=gift.is_tax_deductible,
        designations=[
            Designation(id=state.next_id("designation"), project_id=d.project_id, amount=-d.amount)
            for d in gift.designations
        ],
        **state.stamp(),
    )
    state.gifts[reversal.id] = reversal
    record_webhook(state, state.settings, "GiftCreate", gift_webhook(state, reversal))
    return reversal


@api("gifts:write")
async def reversing_transaction(request: Request, who: Principal) -> Response:
    """``POST /api/Gift/ReversingTransaction`` ``{reversedGiftId, giftDate, notes}``."""
    state = emulator(request)
    body, problem = await object_body(request, "reversingTransaction")
    if problem:
        return problem
    gift_id = parse_int(body.get("reversedgiftid"))
    when = parse_date(body["giftdate"]) if body.get("giftdate") else state.now().date()
    invalid: dict[str, list[str]] = {}
    if gift_id is None:
        invalid["reversingTransaction.reversedGiftId"] = ["The ReversedGiftId field is required."]
    if when is None:
        invalid["reversingTransaction.giftDate"] = [
            f"The value '{body['giftdate']}' is not a valid date."
        ]
    if invalid or gift_id is None or when is None:
        return error(state, 400, "The request is invalid.", invalid)
    gift = state.gifts.get(gift_id)
    if gift is None:
        return not_found(state)
    if gift.reversed_gift_id is not None:
        return error(
            state, 400, f"Gift {gift_id} is a reversing transaction and cannot be reversed."
        )
    already = state.gifts.has("reverses", gift_id)
    if already and state.settings.repeated_reversal == "refuse":  # our inference, a switch
        return error(state, 400, f"Gift {gift_id} has already been reversed.")
    reversal = reverse_gift(state, gift, when, text(body, "notes"))
    return json_response(gift_full(state, reversal))


@api("projects:read")
async def get_project(request: Request, who: Principal) -> Response:
    """``GET /api/Project/{id}``."""
    state = emulator(request)
    project = state.projects.get(request.path_params["project_id"])
    return json_response(project_json(project)) if project else not_found(state)


@api("projects:read")
async def project_by_code(request: Request, who: Principal) -> Response:
    """``GET /api/Project/Code/{code}``."""
    state = emulator(request)
    project = state.project_by(project_id=None, code=request.path_params["code"], name=None)
    return json_response(project_json(project)) if project else not_found(state)


@api("organization:read")
async def organization(request: Request, who: Principal) -> Response:
    """``GET /api/Organization/Current`` (and ``/api/Organization``)."""
    settings = emulator(request).settings
    return json_response(
        {
            "organizationUserId": 1,
            "organizationName": settings.organization_name,
            "organizationTimeZone": settings.organization_time_zone,
            "organizationCulture": settings.organization_culture,
            "currentUserTimeZone": settings.organization_time_zone,
            "isAdministrator": True,
            "isEnabled": True,
        }
    )


# --- queries ---------------------------------------------------------------------------------


def _paging(request: Request, body: Any) -> tuple[int, int] | None:
    state, query = emulator(request), request.query_params
    fallback = body if isinstance(body, dict) else {}
    skip = parse_int(query.get("skip", fallback.get("skip", 0)))
    take = parse_int(query.get("take", fallback.get("take", state.settings.query_default_take)))
    if skip is None or take is None or skip < 0 or take < 0:
        return None
    return skip, min(take, state.settings.query_max_take)  # clamped, not refused


def _page(
    state: EmulatorState,
    params: dict[str, Param],
    records: Iterable[Any],
    body: Any,
    paging: tuple[int, int],
    shape: Callable[[Any], Any],
) -> Response:
    """One page (``skip``, ``take``) of what the query ``body`` finds: ``{list, total}``."""
    try:
        found = run_query(state, params, records, body)
    except QueryError as exc:
        return error(state, 400, str(exc))
    skip, take = paging
    return json_response(
        {"list": [shape(r) for r in found[skip : skip + take]], "total": len(found)}
    )


def query(
    area: str,
    records: Callable[[EmulatorState], Iterable[Any]],
    params: dict[str, Param],
    shape: Callable[[EmulatorState, Any], Any],
    *,
    full: bool = False,
) -> Callable[[Request], Any]:
    """A ``POST .../Query`` endpoint over ``records`` rendered with ``shape``."""

    async def handler(request: Request, who: Principal) -> Response:
        state = emulator(request)
        body, problem = await read_body(request, "query")
        if problem:
            return problem
        paging = _paging(request, body)
        if paging is None:
            return error(
                state, 400, "The request is invalid.", {"skip/take": ["Not a valid number."]}
            )
        skip, take = paging
        limit = state.settings.full_query_timeout_take
        if full and limit is not None and take > limit:
            await asyncio.sleep(state.settings.full_query_timeout_delay)
            return error(state, 504, "The operation has timed out.")
        return _page(state, params, records(state), body, (skip, take), lambda r: shape(state, r))

    return api(area)(handler)


@api("gifts:read")
async def gifts_by_contact(request: Request, who: Principal) -> Response:
    """``GET /api/Gift/ByContact/{contactId}?sortBy=&descending=&skip=&take=``: abbreviated."""
    state, query_params = emulator(request), request.query_params
    paging = _paging(request, None)
    if paging is None:
        return error(state, 400, "The request is invalid.")
    condition = {
        "parameter": "Contact Id",
        "operator": "Is",
        "value": request.path_params["contact_id"],
    }
    body = {
        "groups": [{"conditions": [condition]}],
        "sortBy": query_params.get("sortBy") or "Id",
        "descending": query_params.get("descending"),
    }
    return _page(state, GIFT_PARAMS, state.gifts.values(), body, paging, gift_row)


def _gifts(state: EmulatorState) -> Iterable[Any]:
    return state.gifts.values()


def _contacts(state: EmulatorState) -> Iterable[Any]:
    return state.contacts.values()


def _projects(state: EmulatorState) -> Iterable[Any]:
    return state.projects.values()


ROUTES = [
    Route("/api/v2/Gift/Transaction", gift_transaction, methods=["POST"]),
    Route("/api/v2/Gift/Transactions", gift_transactions, methods=["POST"]),
    Route("/api/Contact/Transaction", contact_transaction, methods=["POST"]),
    Route("/api/Contact/Batch", contact_batch, methods=["POST"]),
    Route("/api/Contact/Find", find_contact, methods=["GET"]),
    Route(
        "/api/Contact/Query",
        query("contacts:read", _contacts, CONTACT_PARAMS, contact_row),
        methods=["POST"],
    ),
    Route(
        "/api/Contact/Query/FullContact",
        query("contacts:read", _contacts, CONTACT_PARAMS, contact_full, full=True),
        methods=["POST"],
    ),
    Route("/api/Contact/{contact_id:int}", get_contact, methods=["GET"]),
    Route("/api/Contact/{contact_id:int}", put_contact, methods=["PUT"]),
    Route("/api/Contact/{source}/{reference}", contact_by_reference, methods=["GET"]),
    Route("/api/ContactIndividual", create_individual, methods=["POST"]),
    Route(
        "/api/ContactIndividual/ByContact/{contact_id:int}", individuals_by_contact, methods=["GET"]
    ),
    Route("/api/ContactIndividual/{individual_id:int}", get_individual, methods=["GET"]),
    Route("/api/ContactIndividual/{individual_id:int}", put_individual, methods=["PUT"]),
    Route("/api/ContactAddress", create_address, methods=["POST"]),
    Route("/api/ContactAddress/ByContact/{contact_id:int}", addresses_by_contact, methods=["GET"]),
    Route("/api/ContactAddress/{address_id:int}", get_address, methods=["GET"]),
    Route("/api/ContactAddress/{address_id:int}", put_address, methods=["PUT"]),
    Route(
        "/api/Gift/Query",
        query("gifts:read", _gifts, GIFT_PARAMS, lambda s, g: gift_row(g)),
        methods=["POST"],
    ),
    Route(
        "/api/Gift/Query/FullGift",
        query("gifts:read", _gifts, GIFT_PARAMS, gift_full, full=True),
        methods=["POST"],
    ),
    Route("/api/Gift/ReversingTransaction", reversing_transaction, methods=["POST"]),
    Route("/api/Gift/ByContact/{contact_id:int}", gifts_by_contact, methods=["GET"]),
    Route("/api/Gift/{gift_id:int}", get_gift, methods=["GET"]),
    Route("/api/Gift/{source}/{transaction_id}", gift_by_transaction, methods=["GET"]),
    Route(
        "/api/Project/Query",
        query("projects:read", _projects, PROJECT_PARAMS, lambda s, p: project_json(p)),
        methods=["POST"],
    ),
    Route("/api/Project/Code/{code}", project_by_code, methods=["GET"]),
    Route("/api/Project/{project_id:int}", get_project, methods=["GET"]),
    Route("/api/Organization/Current", organization, methods=["GET"]),
    Route("/api/Organization", organization, methods=["GET"]),
]
