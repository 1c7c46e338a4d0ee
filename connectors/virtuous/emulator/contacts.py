"""The contact endpoints of the Virtuous emulator: contacts, individuals and addresses.

``PUT /api/Contact/{id}`` patches the fields present (as recorded in 2017). ``PUT`` on an
individual or an address replaces every scalar field (as documented: "excluding a property will
remove its value"), keeping contact methods unless ``contactMethods`` is sent. Every change moves
the contact's ``modifiedDateTimeUtc`` and records a ContactUpdate webhook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connectors.virtuous.emulator.gateway import (
    Principal,
    api,
    emulator,
    error,
    not_found,
    object_body,
)
from connectors.virtuous.emulator.shapes import (
    address_json,
    contact_full,
    contact_webhook,
    individual_json,
)
from connectors.virtuous.emulator.store import (
    Address,
    Contact,
    ContactMethod,
    EmulatorState,
    Individual,
    Payload,
)
from connectors.virtuous.emulator.transactions import custom_fields, parse_int, text
from connectors.virtuous.emulator.webhooks import record_webhook
from core.emulation import json_response

_CONTACT_TEXT = {
    "contacttype": "contact_type",
    "name": "name",
    "informalname": "informal_name",
    "description": "description",
    "website": "website",
    "maritalstatus": "marital_status",
}
_CONTACT_INTS = {
    "anniversarymonth": "anniversary_month",
    "anniversaryday": "anniversary_day",
    "anniversaryyear": "anniversary_year",
}
_INDIVIDUAL_TEXT = {
    "prefix": "prefix",
    "firstname": "first_name",
    "middlename": "middle_name",
    "lastname": "last_name",
    "suffix": "suffix",
    "nickname": "nickname",
    "gender": "gender",
    "passion": "passion",
}
_INDIVIDUAL_INTS = {
    "birthmonth": "birth_month",
    "birthday": "birth_day",
    "birthyear": "birth_year",
    "approximateage": "approximate_age",
}
_ADDRESS_TEXT = {k: k for k in ("label", "address1", "address2", "city", "state", "postal")}
_ADDRESS_TEXT |= {"country": "country", "statecode": "state", "countrycode": "country"}
_ADDRESS_INTS = {
    "startmonth": "start_month",
    "startday": "start_day",
    "endmonth": "end_month",
    "endday": "end_day",
}
_INDIVIDUAL_FIELDS = (_INDIVIDUAL_TEXT, _INDIVIDUAL_INTS)
_ADDRESS_FIELDS = (_ADDRESS_TEXT, _ADDRESS_INTS)

Part = Individual | Address  # what a contact holds several of, one of them primary


def _assign(
    record: Any, body: Payload, texts: dict[str, str], ints: dict[str, str], *, replace: bool
) -> None:
    """Copy fields from a body: only those present (patch) or all of them (replace)."""
    for key, attr in texts.items():
        if key in body or replace:
            setattr(record, attr, text(body, key))
    for key, attr in ints.items():
        if key in body or replace:
            setattr(record, attr, parse_int(body.get(key)) if body.get(key) is not None else None)


def _contact_changed(state: EmulatorState, contact_id: int) -> None:
    contact = state.contacts.get(contact_id)
    if contact is not None:
        state.touch(contact)
        record_webhook(state, state.settings, "ContactUpdate", contact_webhook(state, contact))


# --- contacts --------------------------------------------------------------------------------


def _contact(request: Request) -> Contact | None:
    return emulator(request).contacts.get(request.path_params["contact_id"])


@api("contacts:read")
async def get_contact(request: Request, who: Principal) -> Response:
    """``GET /api/Contact/{id}``."""
    contact = _contact(request)
    state = emulator(request)
    return json_response(contact_full(state, contact)) if contact else not_found(state)


@api("contacts:write")
async def put_contact(request: Request, who: Principal) -> Response:
    """``PUT /api/Contact/{id}``: a patch of the fields sent."""
    state, contact = emulator(request), _contact(request)
    if contact is None:
        return not_found(state)
    body, problem = await object_body(request, "contact")
    if problem:
        return problem
    _assign(contact, body, _CONTACT_TEXT, _CONTACT_INTS, replace=False)
    for key, attr in (("isprivate", "is_private"), ("isarchived", "is_archived")):
        if isinstance(body.get(key), bool):
            setattr(contact, attr, body[key])
    if "customfields" in body:
        contact.custom_fields.update(custom_fields(body["customfields"]) or {})
    _contact_changed(state, contact.id)
    return json_response(contact_full(state, contact))


@api("contacts:read")
async def find_contact(request: Request, who: Principal) -> Response:
    """``GET /api/Contact/Find?email=`` or ``?referenceSource=&referenceId=`` (reference wins)."""
    state, query = emulator(request), request.query_params
    source, reference, email = (
        query.get("referenceSource"),
        query.get("referenceId"),
        query.get("email"),
    )
    if source and reference:
        contact = state.contact_by_reference(source, reference)
    elif email:
        contact = state.contact_by_email(email)
    else:
        return error(state, 400, "Either email or referenceSource and referenceId are required.")
    return json_response(contact_full(state, contact)) if contact else not_found(state)


@api("contacts:read")
async def contact_by_reference(request: Request, who: Principal) -> Response:
    """``GET /api/Contact/{referenceSource}/{referenceId}``."""
    state, params = emulator(request), request.path_params
    contact = state.contact_by_reference(params["source"], params["reference"])
    return json_response(contact_full(state, contact)) if contact else not_found(state)


# --- individuals and addresses ---------------------------------------------------------------


def _methods(state: EmulatorState, items: Any) -> list[ContactMethod]:
    methods = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and text(item, "type") and text(item, "value"):
            methods.append(
                ContactMethod(
                    id=parse_int(item.get("id")) or state.next_id("method"),
                    type=text(item, "type") or "",
                    value=text(item, "value") or "",
                    is_opted_in=item.get("isoptedin") is True,
                    is_primary=item.get("isprimary") is True,
                    **state.stamp(),
                )
            )
    return methods


def _make_primary(records: Iterable[Any], chosen: Any) -> None:
    for record in records:
        record.is_primary = record is chosen


def _add_part(
    state: EmulatorState,
    part: Part,
    body: Payload,
    fields: tuple[dict[str, str], dict[str, str]],
    held: dict[int, Any],
    siblings: list[Any],
) -> None:
    """A new individual or address, filled from ``body`` and kept in ``held``: primary when asked
    for, or when it is the contact's first."""
    _assign(part, body, *fields, replace=True)
    held[part.id] = part
    if body.get("setasprimary") is True or not siblings:
        _make_primary([*siblings, part], part)
    _contact_changed(state, part.contact_id)


def _replace_part(
    state: EmulatorState,
    part: Part,
    body: Payload,
    fields: tuple[dict[str, str], dict[str, str]],
    siblings: list[Any],
) -> None:
    """A PUT on an individual or an address: every scalar field replaced, primary when asked."""
    _assign(part, body, *fields, replace=True)
    if body.get("setasprimary") is True:
        _make_primary(siblings, part)
    state.touch(part)
    _contact_changed(state, part.contact_id)


async def _parent(
    request: Request, binding: str
) -> tuple[Payload, Contact | None, Response | None]:
    state = emulator(request)
    body, problem = await object_body(request, binding)
    contact = state.contacts.get(parse_int(body.get("contactid")) or 0)
    if problem is None and contact is None:
        message = f"The contact {body.get('contactid')!r} does not exist."
        problem = error(state, 400, "The request is invalid.", {f"{binding}.contactId": [message]})
    return body, contact, problem


@api("contacts:write")
async def create_individual(request: Request, who: Principal) -> Response:
    """``POST /api/ContactIndividual``."""
    state = emulator(request)
    body, contact, problem = await _parent(request, "individual")
    if problem or contact is None:
        return problem or not_found(state)
    individual = Individual(id=state.next_id("individual"), contact_id=contact.id, **state.stamp())
    individual.methods = _methods(state, body.get("contactmethods"))
    state.note_emails(individual)
    individual.custom_fields = custom_fields(body.get("customfields")) or {}
    individual.is_secondary = body.get("setassecondary") is True
    siblings = state.individuals_of(contact.id)
    _add_part(state, individual, body, _INDIVIDUAL_FIELDS, state.individuals, siblings)
    return json_response(individual_json(individual))


@api("contacts:read")
async def get_individual(request: Request, who: Principal) -> Response:
    """``GET /api/ContactIndividual/{id}``."""
    state = emulator(request)
    individual = state.individuals.get(request.path_params["individual_id"])
    return json_response(individual_json(individual)) if individual else not_found(state)


@api("contacts:write")
async def put_individual(request: Request, who: Principal) -> Response:
    """``PUT /api/ContactIndividual/{id}``: every scalar field is replaced."""
    state = emulator(request)
    individual = state.individuals.get(request.path_params["individual_id"])
    if individual is None:
        return not_found(state)
    body, problem = await object_body(request, "individual")
    if problem:
        return problem
    if "contactmethods" in body:
        individual.methods = _methods(state, body["contactmethods"])
        state.note_emails(individual)
    siblings = state.individuals_of(individual.contact_id)
    _replace_part(state, individual, body, _INDIVIDUAL_FIELDS, siblings)
    return json_response(individual_json(individual))


@api("contacts:read")
async def individuals_by_contact(request: Request, who: Principal) -> Response:
    """``GET /api/ContactIndividual/ByContact/{contactId}``: a plain array."""
    state = emulator(request)
    people = state.individuals_of(request.path_params["contact_id"])
    return json_response([individual_json(i) for i in people])


@api("contacts:write")
async def create_address(request: Request, who: Principal) -> Response:
    """``POST /api/ContactAddress``."""
    state = emulator(request)
    body, contact, problem = await _parent(request, "address")
    if problem or contact is None:
        return problem or not_found(state)
    address = Address(id=state.next_id("address"), contact_id=contact.id, **state.stamp())
    others = state.addresses_of(contact.id)
    _add_part(state, address, body, _ADDRESS_FIELDS, state.addresses, others)
    return json_response(address_json(address, with_contact=True))


@api("contacts:read")
async def get_address(request: Request, who: Principal) -> Response:
    """``GET /api/ContactAddress/{id}``."""
    state = emulator(request)
    address = state.addresses.get(request.path_params["address_id"])
    return json_response(address_json(address, with_contact=True)) if address else not_found(state)


@api("contacts:write")
async def put_address(request: Request, who: Principal) -> Response:
    """``PUT /api/ContactAddress/{id}``: every scalar field is replaced."""
    state = emulator(request)
    address = state.addresses.get(request.path_params["address_id"])
    if address is None:
        return not_found(state)
    body, problem = await object_body(request, "address")
    if problem:
        return problem
    others = state.addresses_of(address.contact_id)
    _replace_part(state, address, body, _ADDRESS_FIELDS, others)
    return json_response(address_json(address, with_contact=True))


@api("contacts:read")
async def addresses_by_contact(request: Request, who: Principal) -> Response:
    """``GET /api/ContactAddress/ByContact/{contactId}``: a plain array."""
    state = emulator(request)
    found = state.addresses_of(request.path_params["contact_id"])
    return json_response([address_json(a, with_contact=True) for a in found])
