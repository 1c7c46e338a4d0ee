"""Givebutter's error dialect: Laravel's JSON exception bodies.

Every refusal is ``{"message": ...}``; a refused parameter (422, Laravel's ValidationException,
``components.responses.ValidationException`` in the published OpenAPI) adds
``"errors": {field: [message, ...]}``. Faults (429, 5xx, 504) are answered the same way, with the
words Laravel uses, so the connector is tested against what Givebutter would send.
"""

from __future__ import annotations

from starlette.responses import Response

from core.emulation import json_response

_LARAVEL = {
    401: "Unauthenticated.",
    404: "Not Found",
    429: "Too Many Attempts.",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def givebutter_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """The :data:`~core.emulation.ErrorBody` of the Givebutter emulator: Laravel's own words for
    the status (the fault's generic ``message`` is not what Givebutter would say)."""
    return json_response({"message": _LARAVEL.get(status, "Server Error")}, status, headers)


def refusal(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """``{"message"}``: 401, 403, 404 and the rate limit's 429."""
    return json_response({"message": message}, status, headers)


def invalid(field: str, message: str) -> Response:
    """A 422 naming the refused parameter, as Laravel's validator answers."""
    return json_response({"message": message, "errors": {field: [message]}}, 422)
