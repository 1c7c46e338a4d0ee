"""Fakes shared by the tests of core.http: a simulated clock and a scriptable fake server.

Unit tests for the pieces are named after their modules (test_auth, test_governor, test_retry,
test_redact); test_client drives the assembled client, including against a real loopback server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeClock:
    """Wall time that only moves when something sleeps, so windows and backoff take no real time."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeServer:
    """A MockTransport handler that answers from a script and records what it saw.

    ``replies`` are used in order (the last one repeats): a response, an exception to raise
    (``httpx.ConnectError``...), or a callable of the request.
    """

    def __init__(self, *replies: Reply, clock: FakeClock | None = None) -> None:
        self.replies = list(replies) or [httpx.Response(200, json={})]
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            index = min(len(self.requests), len(self.replies) - 1)
            self.requests.append(request)
            if self.clock is not None:
                self.times.append(self.clock.time())
        reply = self.replies[index]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            # A fresh copy each time: a response can be read only once.
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)
        return reply(request)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)
