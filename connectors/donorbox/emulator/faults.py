"""How the emulated Donorbox answers a fault (429, 5xx, 504): two plausible dialects.

Donorbox documents no error bodies. It is a Rails application (Devise's 401 body says so), so:

- ``json``: Rails' ``ActionDispatch::PublicExceptions`` answer to a request that wants JSON,
  ``{"status": 500, "error": "Internal Server Error"}`` (the status's reason phrase), for every
  fault, 429 included.
- ``html``: what a client that does not ask for JSON gets: Rails' static error page for a 5xx
  (``public/500.html``: "We're sorry, but something went wrong."), and Rack::Attack's default
  throttle answer for a 429 (``text/plain`` "Retry later").

Both are our inference; the connector relies on the status and ``Retry-After`` only.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Literal

from starlette.responses import PlainTextResponse, Response

from core.emulation import ErrorBody, json_response

ErrorDialect = Literal["json", "html"]

_PAGE = """<!DOCTYPE html>
<html>
<head>
  <title>We're sorry, but something went wrong ({status})</title>
</head>
<body>
  <div class="dialog">
    <h1>We're sorry, but something went wrong.</h1>
  </div>
</body>
</html>
"""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return HTTPStatus.INTERNAL_SERVER_ERROR.phrase


def json_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """``{"status": 503, "error": "Service Unavailable"}``, as Rails renders it for JSON."""
    return json_response({"status": status, "error": _phrase(status)}, status, headers)


def html_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """Rack::Attack's ``Retry later`` for a 429; Rails' static error page for anything else."""
    if status == 429:
        return PlainTextResponse("Retry later\n", status, headers)
    return Response(_PAGE.format(status=status), status, headers, media_type="text/html")


def error_body(dialect: ErrorDialect) -> ErrorBody:
    return html_error if dialect == "html" else json_error
