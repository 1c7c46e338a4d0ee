"""The network, counting the requests that really leave (a retry is one more), so a run can
say how much of the service's budget it spent."""

from __future__ import annotations

from collections.abc import Callable

import httpx


class CountedTransport(httpx.BaseTransport):
    """Wraps the real transport: each request handed to it is counted, answered or not."""

    def __init__(self, inner: httpx.BaseTransport, count: Callable[[], None]) -> None:
        self._inner = inner
        self._count = count

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._count()
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
