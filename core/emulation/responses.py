"""JSON responses as emulated services send them: decimals as numbers, dates as ISO 8601."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from starlette.responses import Response

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


def json_default(value: object) -> object:
    """``json.dumps(default=...)`` for decimals (as numbers) and dates (ISO 8601)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    msg = f"{type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


def json_response(
    data: object, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response with the ``charset`` that .NET-style APIs put in the content type."""
    body = json.dumps(data, ensure_ascii=False, default=json_default).encode()
    return Response(body, status_code, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)


def empty_response(status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A response with ``Content-Length: 0`` and no content type."""
    return Response(b"", status_code, headers=dict(headers or {}))
