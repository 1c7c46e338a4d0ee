"""What the Mailchimp emulator answers with: members as the API shows them, and problems."""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from connectors.mailchimp.emulator.merge_fields import blank_values
from connectors.mailchimp.emulator.store import EmulatorState, Member, iso

_ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Mailchimp's error body (RFC 7807), as ``application/problem+json``."""
    body: dict[str, Any] = {
        "type": _ERRORS_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors:
        body["errors"] = errors
    return Response(
        json.dumps(body).encode(),
        status,
        headers=headers,
        media_type="application/problem+json; charset=utf-8",
    )


def fault_problem(status: int, message: str, headers: dict[str, str]) -> Response:
    """An injected fault (429 storm, 5xx, 504) as Mailchimp answers one: a problem whose title is
    the status's name (the :data:`core.emulation.ErrorBody` of this emulator)."""
    return problem(status, HTTPStatus(status).phrase, message, headers=headers)


# --- members ----------------------------------------------------------------------------------


def member_json(list_id: str, member: Member, state: EmulatorState) -> dict[str, Any]:
    merge_fields = blank_values(state.merge_fields[list_id]) | member.merge_fields
    full_name = " ".join(str(merge_fields.get(k) or "") for k in ("FNAME", "LNAME")).strip()
    return {
        "id": member.id,
        "email_address": member.email,
        "unique_email_id": member.id[:10],
        "contact_id": member.id[::-1][:32],
        "full_name": full_name,
        "web_id": member.web_id,
        "email_type": "html",
        "status": member.status,
        "merge_fields": merge_fields,
        "interests": {},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": "",
        "timestamp_signup": "",
        "ip_opt": "",
        "timestamp_opt": iso(member.created),
        "member_rating": 2,
        "last_changed": iso(member.last_changed),
        "language": "",
        "vip": False,
        "email_client": "",
        "location": {
            "latitude": 0,
            "longitude": 0,
            "gmtoff": 0,
            "dstoff": 0,
            "country_code": "",
            "timezone": "",
            "region": "",
        },
        "source": member.source,
        "tags_count": len(member.tags),
        "tags": [{"id": state.tag_id(name), "name": name} for name in member.tags],
        "list_id": list_id,
        "_links": [
            {"rel": "self", "href": f"/lists/{list_id}/members/{member.id}", "method": "GET"}
        ],
    }


def _paths(value: str | None) -> list[list[str]]:
    return [p.strip().split(".") for p in (value or "").split(",") if p.strip()]


def _exclude(data: Any, path: list[str]) -> None:
    if isinstance(data, list):
        for item in data:
            _exclude(item, path)
    elif isinstance(data, dict) and path and path[0] in data:
        if len(path) == 1:
            del data[path[0]]
        else:
            _exclude(data[path[0]], path[1:])


def _include(data: Any, paths: list[list[str]]) -> Any:
    """Keep only ``paths`` (``members.email_address``); a list applies them to every item."""
    if isinstance(data, list):
        return [_include(item, paths) for item in data]
    if not isinstance(data, dict) or any(not p for p in paths):
        return data
    kept: dict[str, Any] = {}
    for head in dict.fromkeys(p[0] for p in paths):
        if head in data:
            kept[head] = _include(data[head], [p[1:] for p in paths if p[0] == head])
    return kept


def project(data: dict[str, Any], fields: str | None, exclude: str | None) -> dict[str, Any]:
    """Apply ``fields`` and ``exclude_fields`` as Mailchimp does (comma-separated dotted paths)."""
    included = _paths(fields)
    if included:
        data = _include(data, included)
    for path in _paths(exclude):
        _exclude(data, path)
    return data
