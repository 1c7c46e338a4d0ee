"""An audience's merge fields: their definitions, and the checks Mailchimp makes of the values.

Every audience has its own fields (``GET /lists/{id}/merge-fields``), each with a tag, a type and
``required``. A new audience has FNAME, LNAME, ADDRESS, PHONE and BIRTHDAY, none required. A value
is checked against its field's type wherever members are written (PUT, PATCH, batch subscribe):

* an ``address`` is an object whose addr1, city, state and zip are all non-empty (Mailchimp's
  address is all or nothing), or ``""`` to clear it. Whether ``country`` may be left out is not
  settled (help articles say it defaults to US, a support answer lists it as required), hence the
  ``address_country_required`` setting; when it may, the field's default country (US) is stored;
* a ``number`` is a number (or a string that reads as one), else "Please enter a number", the
  message of captured real answers;
* a ``radio`` or ``dropdown`` value is one of the field's choices;
* the other types (text, phone, date, birthday, zip, url, imageurl) take text or a number;
* a required field must hold a value once the write is done, unless the request says
  ``skip_merge_validation=true``.

What Mailchimp does with a tag the audience does not define is not documented either: the
``unknown_merge_fields`` setting either ignores it (the value is not kept) or refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

MergeType = Literal[
    "text",
    "number",
    "address",
    "phone",
    "date",
    "birthday",
    "zip",
    "url",
    "imageurl",
    "radio",
    "dropdown",
]
MERGE_TYPES: tuple[MergeType, ...] = MergeType.__args__  # type: ignore[attr-defined]

#: The parts of an address Mailchimp refuses to go without.
ADDRESS_PARTS = ("addr1", "city", "state", "zip")
#: Mailchimp's number for the United States, the default country of a new address field.
US = 164
INVALID = "Your merge fields were invalid."
#: What the emulator does with a tag the audience does not define (undocumented: a switch).
UnknownTags = Literal["ignored", "refused"]


class MergeField(BaseModel):
    """One merge field of an audience, as ``POST /lists/{id}/merge-fields`` defines it."""

    tag: str = Field(min_length=1, max_length=10)
    name: str = ""
    type: MergeType = "text"
    required: bool = False
    choices: list[str] = Field(default_factory=list, description="radio and dropdown values")
    default_country: int = Field(default=US, description="address fields")


def default_fields() -> list[MergeField]:
    """The fields of a new Mailchimp audience."""
    return [
        MergeField(tag="FNAME", name="First Name"),
        MergeField(tag="LNAME", name="Last Name"),
        MergeField(tag="ADDRESS", name="Address", type="address"),
        MergeField(tag="PHONE", name="Phone Number", type="phone"),
        MergeField(tag="BIRTHDAY", name="Birthday", type="birthday"),
    ]


def definition_json(field: MergeField, merge_id: int, list_id: str) -> dict[str, Any]:
    """A merge field as ``GET /lists/{id}/merge-fields`` shows it."""
    return {
        "merge_id": merge_id,
        "tag": field.tag,
        "name": field.name or field.tag,
        "type": field.type,
        "required": field.required,
        "default_value": "",
        "public": True,
        "display_order": merge_id + 1,
        "options": _options(field),
        "help_text": "",
        "list_id": list_id,
        "_links": [],
    }


def _options(field: MergeField) -> dict[str, Any]:
    match field.type:
        case "address":
            return {"default_country": field.default_country}
        case "phone":
            return {"phone_format": "none"}
        case "date":
            return {"date_format": "MM/DD/YYYY"}
        case "birthday":
            return {"date_format": "MM/DD"}
        case "radio" | "dropdown":
            return {"choices": list(field.choices)}
        case "text":
            return {"size": 25}
    return {}


def blank_values(fields: Iterable[MergeField]) -> dict[str, Any]:
    """What a member with no values shows: ``""`` for every field (an address too)."""
    return {field.tag: "" for field in fields}


def check(
    fields: Sequence[MergeField],
    given: Mapping[str, Any],
    held: Mapping[str, Any],
    *,
    skip_required: bool,
    country_required: bool,
    unknown: UnknownTags = "ignored",
) -> list[dict[str, str]]:
    """Every ``{field, message}`` Mailchimp would refuse ``given`` for (``held``: the member's
    values before the write)."""
    by_tag = {field.tag: field for field in fields}
    errors = []
    for tag, value in given.items():
        field = by_tag.get(tag)
        if field is None:
            message = "This merge field does not exist" if unknown == "refused" else None
        else:
            message = _wrong(field, value, country_required)
        if message is not None:
            errors.append({"field": tag, "message": message})
    if not skip_required:
        after = {**held, **given}
        for field in fields:
            if field.required and _blank(after.get(field.tag)):
                errors.append({"field": field.tag, "message": "Please enter a value"})
    return errors


def stored(fields: Sequence[MergeField], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` as Mailchimp keeps it: only the audience's tags, an address with all six parts
    and its country."""
    by_tag = {field.tag: field for field in fields}
    kept = {tag: value for tag, value in given.items() if tag in by_tag}
    for tag, value in kept.items():
        field = by_tag[tag]
        if field.type == "address" and isinstance(value, dict):
            address = {k: str(value.get(k) or "") for k in ("addr1", "addr2", "city", "state")}
            address["zip"] = str(value.get("zip") or "")
            address["country"] = str(value.get("country") or "") or _country(field)
            kept[tag] = address
    return kept


def _country(field: MergeField) -> str:
    return "US" if field.default_country == US else str(field.default_country)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == {}


def _wrong(field: MergeField, value: Any, country_required: bool) -> str | None:
    """Why ``value`` does not fit ``field``, or None."""
    if value == "" or value is None:
        return None  # clears the field
    if field.type == "address":
        return _wrong_address(value, country_required)
    if isinstance(value, dict | list | bool):
        return "Please enter a single value"
    if field.type == "number":
        return None if _is_number(value) else "Please enter a number"
    if field.type in {"radio", "dropdown"} and str(value) not in field.choices:
        return f"Please choose one of: {', '.join(field.choices)}"
    return None


def _wrong_address(value: Any, country_required: bool) -> str | None:
    if not isinstance(value, dict):
        return "Please enter a complete address"
    needed = (*ADDRESS_PARTS, "country") if country_required else ADDRESS_PARTS
    missing = [part for part in needed if not str(value.get(part) or "").strip()]
    if missing:
        return f"Please enter a complete address (missing {', '.join(missing)})"
    return None


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True
