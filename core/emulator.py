"""What every service emulator shares: a loopback server, fault injection and JSON responses.

An emulator is an ASGI app (usually starlette); tests and ``connector sandbox`` run it so::

    with EmulatorServer(create_app()) as server:
        httpx.get(f"{server.url}/api/thing")

:class:`FaultMiddleware` reads a mutable :class:`Faults` on every request, so a test can start a
storm of 429s halfway through a run. The ``/_emulator/`` control plane is never faulted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Self

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_emulator/"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
Rate = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0)]


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


class DropConnection(Exception):
    """A drop fault hit an app served in process, where there is no connection to close."""


class Faults(BaseModel):
    """The fault switches of one emulator. Mutate it while the emulator runs."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    error_rate: Rate = 0.0  # answered with one of error_statuses
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503])
    latency_seconds: Seconds = 0.0  # added to every request
    rate_limit_storm: Annotated[int, Field(ge=0)] = 0  # the next N requests get a 429
    storm_retry_after: Annotated[int, Field(ge=0)] = 1
    timeout_rate: Rate = 0.0  # left hanging for hang_seconds, then 504 if the client waited
    hang_seconds: Seconds = 30.0
    drop_rate: Rate = 0.0  # the connection is closed with no response at all
    # The request IS processed, then the connection is closed before the answer: the case where
    # only the service's dedup key keeps a retried write from happening twice.
    lost_response_rate: Rate = 0.0
    seed: int | None = None  # makes the dice repeatable

    _rng: random.Random | None = PrivateAttr(None)

    def update(self, **changes: Any) -> None:
        """Set several switches, all or none (ValueError); a new ``seed`` restarts the dice."""
        checked = type(self).model_validate(self.model_dump() | changes)
        for name in changes:
            setattr(self, name, getattr(checked, name))
        if "seed" in changes:
            self._rng = None

    def clear(self) -> None:
        """Switch every fault off."""
        self.update(**type(self)().model_dump())

    def _random(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng

    def chance(self, rate: float) -> bool:
        """Roll the (seeded) dice once."""
        return rate > 0 and self._random().random() < rate

    def error_status(self) -> int:
        """One of ``error_statuses``, picked with the same seeded dice."""
        return self._random().choice(self.error_statuses or [500])

    def take_storm(self) -> bool:
        """Whether this request belongs to a 429 storm; consumes one request of it."""
        if self.rate_limit_storm > 0:
            self.rate_limit_storm -= 1
            return True
        return False


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class ApiMiddleware:
    """Middleware that acts on an emulator's API requests only: :meth:`handle` gets every HTTP
    request but the ``/_emulator/`` control plane, which must keep working whatever a test has
    switched on (faults, a revoked key, a full connection cap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer, or pass on to ``self.app``, one API request."""
        raise NotImplementedError


class FaultMiddleware(ApiMiddleware):
    """Applies :class:`Faults` to every HTTP request except the ``/_emulator/`` control plane.

    Order: latency, then a 429 storm, a drop, a lost response, a hang, a 5xx; otherwise the app
    answers.
    """

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        super().__init__(app)
        self.faults = faults

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        response: Response | None = None
        if faults.take_storm():
            retry = {"Retry-After": str(faults.storm_retry_after)}
            response = json_response({"message": "Too many requests."}, 429, retry)
        elif faults.chance(faults.drop_rate):
            if _DROP not in scope:
                raise DropConnection
            scope[_DROP].append(True)  # EmulatorServer closes the socket once we return
            return
        elif faults.chance(faults.lost_response_rate):
            if _DROP not in scope:
                raise DropConnection

            async def swallow(message: Message) -> None:
                pass

            await self.app(scope, receive, swallow)
            scope[_DROP].append(True)
            return
        elif faults.chance(faults.timeout_rate):
            try:
                await asyncio.wait_for(_wait_for_disconnect(receive), faults.hang_seconds)
            except TimeoutError:
                response = json_response({"message": "The operation has timed out."}, 504)
            else:
                return  # the client gave up; there is nobody left to answer
        elif faults.chance(faults.error_rate):
            response = json_response({"message": "An error has occurred."}, faults.error_status())
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)


# uvicorn closes the socket without writing anything when an app returns a value, which is exactly
# a dropped connection; the error it logs about it is noise here, so it is filtered out.
_DROP, _DROPPED = "emulator.drop", "connection dropped by an emulated fault"
logging.getLogger("uvicorn.error").addFilter(lambda record: record.args != (_DROPPED,))


class _DropAware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> str | None:
        drops: list[bool] = []
        await self.app({**scope, _DROP: drops} if scope["type"] == "http" else scope, receive, send)
        return _DROPPED if drops else None


def _config(app: ASGIApp, host: str, port: int, log_level: str, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        _DropAware(app),
        host=host,
        port=port,
        log_level=log_level,
        http="h11",  # the drop trick relies on its behaviour; httptools may not be installed
        timeout_graceful_shutdown=1,  # a hanging fault must not hold up stop()
        **extra,
    )


def serve_forever(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"
) -> None:
    """Serve ``app`` in the foreground until interrupted (for ``connector sandbox``)."""
    uvicorn.Server(_config(app, host, port, log_level)).run()


class EmulatorServer:
    """Runs an ASGI app with uvicorn on loopback in a background thread.

    ``port=0`` (the default) picks a free port; :attr:`url` is right once :meth:`start` returns,
    which it does when the socket accepts connections.
    """

    def __init__(
        self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once connections are accepted."""
        if self._thread is not None:
            msg = f"emulator server at {self.url} is already running"
            raise RuntimeError(msg)
        # log_config=None leaves the host process's logging alone.
        config = _config(self.app, self.host, self.port, self.log_level, log_config=None)
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(target=server.run, name="emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                msg = f"emulator server on {self.host} port {self.port} did not start"
                raise RuntimeError(msg)
            time.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True  # graceful shutdown is capped at a second, see _config
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
