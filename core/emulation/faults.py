"""Fault injection: the switches (:class:`Faults`) and the middleware that applies them.

:class:`FaultMiddleware` reads a mutable :class:`Faults` on every request, so a test can start a
storm of 429s halfway through a run. The ``/_emulator/`` control plane is never faulted. Each
service answers a fault in its own dialect (the body its real API sends for that status), given as
an :data:`ErrorBody`, so the real SDKs react to it as they would in production.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.emulation.responses import json_response

CONTROL_PREFIX = "/_emulator/"
Rate = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0)]
# Set by the server on every HTTP scope: a fault appends to it to have the connection closed.
DROP_SCOPE_KEY = "emulator.drop"

#: Builds the service's own answer to a fault: ``(status, message, headers) -> Response``.
ErrorBody = Callable[[int, str, dict[str, str]], Response]


def plain_error(status: int, message: str, headers: dict[str, str]) -> Response:
    """``{"message": ...}``: the dialect of .NET Web API services such as Virtuous."""
    return json_response({"message": message}, status, headers)


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
    answers. ``error_body`` gives the 429, 5xx and 504 answers the service's own shape.
    """

    def __init__(self, app: ASGIApp, faults: Faults, error_body: ErrorBody = plain_error) -> None:
        super().__init__(app)
        self.faults = faults
        self.error_body = error_body

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        response: Response | None = None
        if faults.take_storm():
            retry = {"Retry-After": str(faults.storm_retry_after)}
            response = self.error_body(429, "Too many requests.", retry)
        elif faults.chance(faults.drop_rate):
            if DROP_SCOPE_KEY not in scope:
                raise DropConnection
            scope[DROP_SCOPE_KEY].append(True)  # EmulatorServer closes the socket once we return
            return
        elif faults.chance(faults.lost_response_rate):
            if DROP_SCOPE_KEY not in scope:
                raise DropConnection

            async def swallow(message: Message) -> None:
                pass

            await self.app(scope, receive, swallow)
            scope[DROP_SCOPE_KEY].append(True)
            return
        elif faults.chance(faults.timeout_rate):
            try:
                await asyncio.wait_for(_wait_for_disconnect(receive), faults.hang_seconds)
            except TimeoutError:
                response = self.error_body(504, "The operation has timed out.", {})
            else:
                return  # the client gave up; there is nobody left to answer
        elif faults.chance(faults.error_rate):
            response = self.error_body(faults.error_status(), "An error has occurred.", {})
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)
