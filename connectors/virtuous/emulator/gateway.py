"""What stands in front of every Virtuous endpoint: auth, the rate limit, errors and the log.

* ``Authorization: Bearer <key>``: the scheme in any case, exactly one space, no quotes. Keys are
  seeded; access tokens come from ``POST /Token``. Anything else is a 401 (which carries no
  rate-limit headers and does not count: the organization is unknown).
* The rate limit is a fixed window per organization, shared by all its keys and tokens, aligned on
  multiples of ``rate_window_seconds`` since the epoch. Every response to an authenticated ``/api``
  request carries ``X-RateLimit-Limit/-Remaining/-Reset``, 4xx and 5xx included; past the limit
  the answer is 429 with ``Retry-After`` and the 2026 error envelope. ``/Token``, unknown routes,
  ``/_emulator/`` and injected faults do not count.
* A key or token whose permission group lacks the endpoint's area gets 403 (after counting).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.virtuous.emulator.store import EmulatorState, RequestLogEntry, Token
from connectors.virtuous.emulator.transactions import Rejection, lower_keys
from core.emulation import ApiMiddleware, empty_response, json_response

DENIED = "Authorization has been denied for this request."
_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITED",
    504: "GATEWAY_TIMEOUT",
}
_SECRET_HEADERS = {"authorization", "otp", "cookie"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organization and the areas their permission group grants."""

    org: str
    permissions: frozenset[str] | None

    def may(self, area: str) -> bool:
        """Whether the permission group includes ``area`` (None grants everything)."""
        return self.permissions is None or area in self.permissions


def emulator(request: Request) -> EmulatorState:
    """The state of the app serving this request."""
    state: EmulatorState = request.app.state.emulator
    return state


def error(
    state: EmulatorState,
    status: int,
    message: str,
    model_state: dict[str, list[str]] | None = None,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error in the configured shape: legacy ``{message, modelState}`` or the envelope."""
    if state.settings.error_shape == "envelope" or status == 429:
        details = [
            {"field": field, "code": "INVALID", "message": text}
            for field, texts in (model_state or {}).items()
            for text in texts
        ]
        envelope = {"code": code or _CODES.get(status, "INTERNAL_ERROR"), "message": message}
        return json_response({"error": envelope | {"details": details}}, status, headers)
    body: dict[str, Any] = {"message": message}
    if model_state:
        body["modelState"] = model_state
    return json_response(body, status, headers)


def not_found(state: EmulatorState) -> Response:
    """A missing record: an empty 404, as recorded (the envelope, if configured)."""
    if state.settings.error_shape == "envelope":
        return error(state, 404, "The resource was not found.")
    return empty_response(404)


def rejected(state: EmulatorState, rejection: Rejection) -> Response:
    """A refused transaction POST."""
    code = "CONFLICT" if rejection.duplicate else "VALIDATION_FAILED"
    return error(state, 400, rejection.message, rejection.model_state, code=code)


async def read_body(request: Request, binding: str) -> tuple[Any, Response | None]:
    """The JSON body with lower-cased keys, or the 400 ASP.NET would give for it."""
    state = emulator(request)
    raw = await request.body()
    if not raw.strip():
        return None, error(state, 400, "The argument cannot be null", code="BAD_REQUEST")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return None, error(state, 400, "The request is invalid.", {binding: [str(exc)]})
    if data is None:
        return None, error(state, 400, "The argument cannot be null", code="BAD_REQUEST")
    return lower_keys(data), None


async def object_body(request: Request, binding: str) -> tuple[dict[str, Any], Response | None]:
    """Like :func:`read_body`, for endpoints whose body must be a JSON object."""
    body, problem = await read_body(request, binding)
    if problem is None and not isinstance(body, dict):
        invalid = {binding: ["An error has occurred."]}
        problem = error(emulator(request), 400, "The request is invalid.", invalid)
    return (body if isinstance(body, dict) else {}), problem


# --- auth and the rate limit -----------------------------------------------------------------


def principal(state: EmulatorState, header: str | None) -> Principal | None:
    """The caller behind an ``Authorization`` header, if it is well formed and valid."""
    if not header or header[:7].lower() != "bearer ":
        return None
    credential = header[7:]
    if not credential or any(c in credential for c in ' "\t'):
        return None
    key = state.api_keys.get(credential)
    if key is not None:
        return Principal(key.org, key.permissions)
    token = state.access_tokens.get(credential)
    if token is not None and token.expires > state.now():
        return Principal(token.org, token.permissions)
    return None


def charge(state: EmulatorState, org: str) -> tuple[bool, dict[str, str]]:
    """Count one request against the organization's window: (allowed, rate-limit headers)."""
    settings = state.settings
    now = state.now().timestamp()
    window = settings.rate_window_seconds
    start = math.floor(now / window) * window
    current, used = state.rate_windows.get(org, (start, 0))
    used = used + 1 if current == start else 1
    state.rate_windows[org] = (start, used)
    state.request_counts[org] += 1
    reset = start + window
    headers = {
        "X-RateLimit-Limit": str(settings.rate_limit),
        "X-RateLimit-Remaining": str(max(0, settings.rate_limit - used)),
        "X-RateLimit-Reset": str(math.ceil(reset)),
    }
    if used <= settings.rate_limit:
        return True, headers
    return False, headers | {"Retry-After": str(max(1, math.ceil(reset - now)))}


Handler = Callable[[Request, Principal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def api(area: str) -> Callable[[Handler], Endpoint]:
    """Put auth, the rate limit and the permission check in front of an ``/api`` handler."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            state = emulator(request)
            who = principal(state, request.headers.get("authorization"))
            if who is None:
                return error(state, 401, DENIED)
            entry = request.scope.get("virtuous.log")
            if isinstance(entry, RequestLogEntry):
                entry.org = who.org
            allowed, headers = charge(state, who.org)
            if not allowed:
                wait = headers["Retry-After"]
                message = f"API rate limit exceeded. Try again in {wait} seconds."
                response = error(state, 429, message, headers=headers)
            elif not who.may(area):
                message = f"Your permission group does not grant '{area}'."
                response = error(state, 403, message)
            else:
                response = await handler(request, who)
            response.headers.update(headers)
            return response

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


# --- POST /Token -----------------------------------------------------------------------------


def _grant_error(description: str | None, error_code: str = "invalid_grant") -> Response:
    body = {"error": error_code} | ({"error_description": description} if description else {})
    return json_response(body, 400)


def _issue(state: EmulatorState, user: str, org: str, perms: frozenset[str] | None) -> Response:
    settings, now = state.settings, state.now()
    expires = now + timedelta(seconds=settings.token_lifetime_seconds)
    access = secrets.token_urlsafe(450)  # opaque and ~600 characters long, like the real ones
    refresh = secrets.token_urlsafe(32)
    state.access_tokens[access] = Token(user, org, perms, expires)
    refresh_expires = now + timedelta(seconds=settings.refresh_token_lifetime_seconds)
    state.refresh_tokens[refresh] = Token(user, org, perms, refresh_expires)
    two_factor = state.users[user.lower()].two_factor if user.lower() in state.users else False
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": settings.token_lifetime_seconds,
        "refresh_token": refresh,
        "userName": user,
        "twoFactorEnabled": str(two_factor),
        ".issued": format_datetime(now, usegmt=True),
        ".expires": format_datetime(expires, usegmt=True),
    }
    response = json_response(body, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})
    response.headers["content-type"] = "application/json;charset=UTF-8"
    return response


async def token(request: Request) -> Response:
    """``POST /Token``: the password grant (with 2FA) and the rotating refresh grant."""
    state = emulator(request)
    form: dict[str, list[str]] = {}
    # Only a urlencoded body is read: a multipart one fails, as reported for the real API.
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)

    def field(name: str) -> str:
        return (form.get(name) or [""])[0]

    grant = field("grant_type")
    if grant == "password":
        user = state.users.get(field("username").strip().lower())
        if user is None or user.password != field("password"):
            return _grant_error("The user name or password is incorrect.")
        if user.two_factor:
            otp = field("otp") or request.headers.get("otp", "")
            if not otp:
                return empty_response(202)  # "a code was sent to your phone"
            if otp != user.otp:
                return _grant_error("The verification code is incorrect.")
        return _issue(state, user.email, user.org, user.permissions)
    if grant == "refresh_token":
        old = state.refresh_tokens.pop(field("refresh_token"), None)
        if old is None or old.expires <= state.now():
            return _grant_error("The refresh token is invalid or has expired.")
        return _issue(state, old.user, old.org, old.permissions)
    return _grant_error(None, "unsupported_grant_type")


# --- the request log -------------------------------------------------------------------------


class RequestLog(ApiMiddleware):
    """Records every non-control request (credentials and ``/Token`` bodies left out)."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        super().__init__(app)
        self.state = state

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _SECRET_HEADERS
        }
        entry = RequestLogEntry(
            time=self.state.now(),
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
        )
        self.state.requests.append(entry)
        scope["virtuous.log"] = entry
        chunks: list[bytes] = []
        secret = scope["path"].lower() == "/token"

        async def logged_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not secret:
                chunks.append(message.get("body", b""))
                entry.body = b"".join(chunks).decode("utf-8", "replace") or None
            return message

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        await self.app(scope, logged_receive, logged_send)
