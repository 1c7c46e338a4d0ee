"""What every contract test uses: the published schemas, and a recorder of emulator traffic.

The schemas under ``schemas/`` are JSON Schema (2020-12) subsets of each service's published
specification; ``SOURCES.md`` names the file, commit and version each was derived from. A contract
test wraps an emulator's ASGI app in :class:`Recorder`, drives it (through the real connectors and
SDKs where there are any), then checks every request and every response body it saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft202012Validator
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.emulation import CONTROL_PREFIX, Faults

SCHEMAS = Path(__file__).parent / "schemas"


@cache
def _document(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return document


def validator(name: str, definition: str | None = None) -> Draft202012Validator:
    """The validator of ``schemas/<name>``, or of one ``$defs`` entry of it. No format checks:
    the specs use formats of their own (Stripe's ``unix-time``), see SOURCES.md."""
    document = _document(name)
    if definition is None:
        return Draft202012Validator(document)
    if definition not in document.get("$defs", {}):
        raise KeyError(f"{name} has no $defs/{definition}")
    return Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": document["$defs"]})


def violations(instance: Any, name: str, definition: str | None = None) -> list[str]:
    """Every way ``instance`` breaks the contract, each naming where (``$.data[0].status``)."""
    found = validator(name, definition).iter_errors(instance)
    return sorted(f"{error.json_path}: {error.message}" for error in found)


@dataclass
class Exchange:
    """One API request an emulator answered, and its answer."""

    method: str
    path: str
    query: list[tuple[str, str]]
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.response_body)

    def request_json(self) -> Any:
        return json.loads(self.request_body)


class Recorder:
    """ASGI middleware that keeps every API exchange (the ``/_emulator/`` control plane aside)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    def __getattr__(self, name: str) -> Any:  # app.state and app.routes stay reachable
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        exchange = Exchange(scope["method"], scope["path"], query, headers, b"")
        self.exchanges.append(exchange)

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.request_body += message.get("body", b"")
            return message

        async def send_and_keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
                }
            elif message["type"] == "http.response.body":
                exchange.response_body += message.get("body", b"")
            await send(message)

        return await self.app(scope, receive_and_keep, send_and_keep)

    def answered(self, status: int | None = None) -> list[Exchange]:
        """The exchanges that got an answer (``status`` only, if given)."""
        return [e for e in self.exchanges if e.status and (status is None or e.status == status)]


def api_routes(app: Any) -> set[tuple[str, str]]:
    """``(method, path template)`` of every API route the emulator declares (no control plane,
    no HEAD), so a test can require each one to have been exercised."""
    declared = set()
    for route in app.routes:
        if isinstance(route, Route) and not route.path.startswith(CONTROL_PREFIX):
            for method in route.methods or {"GET"}:
                if method != "HEAD":
                    declared.add((method, route.path))
    return declared


def exercised(recorder: Recorder, app: Any) -> set[tuple[str, str]]:
    """The declared routes at least one recorded exchange matched."""
    hit = set()
    for exchange in recorder.exchanges:
        scope = {"type": "http", "path": exchange.path, "method": exchange.method}
        for route in app.routes:
            if isinstance(route, Route):
                match, _ = route.matches(scope)
                if match.name == "FULL":
                    hit.add((exchange.method, route.path))
    return hit


#: One request's worth of each fault the emulators inject, each to be answered in the service's
#: own dialect: a 429 storm, 5xx, and a hang that ends in a 504.
EVERY_FAULT: tuple[dict[str, Any], ...] = (
    {"rate_limit_storm": 1},
    {"error_rate": 1, "error_statuses": [500]},
    {"error_rate": 1, "error_statuses": [502]},
    {"error_rate": 1, "error_statuses": [503]},
    {"timeout_rate": 1, "hang_seconds": 0.01},
)


def provoke_every_fault(send: Callable[[], int], faults: Faults) -> None:
    """Switch each of :data:`EVERY_FAULT` on for one request (``send`` gives its status)."""
    for switches in EVERY_FAULT:
        faults.update(**switches)
        status = send()
        faults.clear()
        assert status >= 429, f"{switches} was answered {status}"
