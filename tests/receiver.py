"""A webhook receiver on loopback for emulator tests: it keeps each request as a
:class:`core.webhooks.Delivery` and answers the statuses a test scripts (then 200)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.emulation import EmulatorServer
from core.webhooks import Delivery


class Receiver:
    """What reached ``url``; ``fail`` is the statuses the next POSTs get, in turn."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.fail: list[int] = []
        self.url = ""
        self._lock = threading.Lock()

    async def endpoint(self, request: Request) -> Response:
        delivery = Delivery(
            method=request.method,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=await request.body(),
            received_at=time.time(),
        )
        with self._lock:
            self.deliveries.append(delivery)
            status = self.fail.pop(0) if self.fail and request.method == "POST" else 200
        return Response(status_code=status)

    def posts(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.method == "POST"]

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 10) -> bool:
        """Wait until ``predicate(self.posts())`` holds; False if it never did."""
        deadline = time.monotonic() + timeout
        while not predicate(self.posts()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


@contextmanager
def receiving(path: str = "/hooks/test") -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route(path, receiver.endpoint, methods=["GET", "POST"])])
    with EmulatorServer(app) as server:
        receiver.url = f"{server.url}{path}"
        yield receiver
