"""How an emulator delivers webhooks: a background queue that POSTs each one to its subscriber's
URL and retries a failed attempt with growing delays, the way the real services do.

An emulator keeps its subscriptions itself (they are created through its own API) and hands each
delivery to a :class:`WebhookDeliverer` when a change happens::

    deliverer = WebhookDeliverer("Virtuous", delays=(30, 120, 600), scale=settings.delay_scale)
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               "X-Virtuous-Signature": hmac_sha256(secret, body, "base64")}
    deliverer.send(url, body, headers, label="GiftCreate")
    deliverer.check(url)            # a GET now, for services that validate a URL first
    deliverer.wait_idle(5)          # tests: every delivery succeeded or was given up
    deliverer.attempts()            # what was tried, when, and what the receiver answered

Any answer but 2xx, a timeout and a refused connection count as a failed attempt (even a 4xx: the
services retry those too). ``delays`` are the waits before the second, third... attempts; after
the last one the delivery is given up. ``scale`` multiplies every delay, so a test can run a
schedule of minutes in milliseconds and still see its shape. Sign with
:func:`core.webhooks.hmac_sha256`, the function the webhook sources verify with.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import Lifespan

from core.errors import ConnectorError
from core.http import RetryPolicy, Service, build_client

#: Waits before each retry when a service publishes no schedule: growing about fivefold.
DEFAULT_DELAYS: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0)

#: Each attempt is one POST: the service's own schedule retries, and a receiver's 429 is a
#: failed attempt like any other answer but 2xx (not a throttle to wait out in place).
_ONE_TRY = RetryPolicy(attempts=1, throttle_timeout=0)

#: How many attempts :meth:`WebhookDeliverer.attempts` remembers (oldest forgotten first).
_LOG_SIZE = 10_000


@dataclass(frozen=True)
class Attempt:
    """One POST of one delivery: ``status`` is None when no answer came (refused, timed out)."""

    url: str
    label: str
    number: int  # 1 for the first attempt
    at: float  # the deliverer's clock (monotonic seconds) when the attempt started
    status: int | None
    error: str | None = None
    final: bool = False  # delivered, or the last attempt the schedule allows

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_json(self) -> dict[str, Any]:
        """The attempt as an emulator's ``/_emulator/deliveries`` lists it (see
        :func:`attempts_json`)."""
        return {
            "url": self.url,
            "event": self.label,
            "attempt": self.number,
            "at": self.at,
            "status": self.status,
            "error": self.error,
            "delivered": self.delivered,
            "final": self.final,
        }


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    headers: Mapping[str, str] = field(compare=False)
    label: str = field(compare=False)
    generation: int = field(compare=False)
    number: int = field(compare=False, default=1)
    sign: Signer | None = field(compare=False, default=None)


#: Headers made afresh for each attempt of a body (a signature over the time it is sent).
Signer = Callable[[bytes], Mapping[str, str]]


class WebhookDeliverer:
    """POSTs queued deliveries from one daemon thread, started on the first :meth:`send`.

    Deliveries are independent: one that keeps failing does not hold up the others, and they are
    not promised to arrive in the order they were sent (the real services promise none either).
    ``transport`` replaces the network (tests); requests go through :func:`core.http.build_client`
    so plain HTTP is refused except to this host.
    """

    def __init__(
        self,
        service_name: str,
        *,
        delays: Sequence[float] = DEFAULT_DELAYS,
        scale: float = 1.0,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if scale < 0 or any(d < 0 for d in delays):
            msg = f"webhook retry delays must not be negative, got {list(delays)} x {scale}"
            raise ValueError(msg)
        self.delays = tuple(d * scale for d in delays)
        self._service = Service(f"{service_name} webhooks", "", retry=_ONE_TRY, timeout=timeout)
        self._transport = transport
        self._clock = clock
        self._queue: list[_Job] = []
        self._seq = itertools.count()
        self._busy = 0
        self._generation = 0  # a clear() forgets the deliveries of earlier generations
        self._log: deque[Attempt] = deque(maxlen=_LOG_SIZE)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        label: str = "",
        sign: Signer | None = None,
    ) -> None:
        """Queue ``body`` for ``url``; its first attempt is made as soon as the thread is free.
        ``sign(body)`` adds headers made at each attempt (Stripe signs every retry anew, so a
        retried event's timestamp is never older than the receiver's tolerance)."""
        with self._cond:
            if self._closed:
                return
            job = _Job(
                self._clock(),
                next(self._seq),
                url,
                body,
                dict(headers),
                label,
                self._generation,
                sign=sign,
            )
            heapq.heappush(self._queue, job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self._service.name, daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def check(self, url: str) -> int | None:
        """GET ``url`` once, now, as a service does to validate a URL before it subscribes it:
        the status answered, or None when no answer came."""
        with build_client(self._service, transport=self._transport) as client:
            try:
                return client.get(url).status_code
            except (httpx.HTTPError, ConnectorError):
                return None

    def attempts(self) -> list[Attempt]:
        """Every attempt so far (the latest ten thousand), oldest first."""
        with self._cond:
            return list(self._log)

    def pending(self) -> int:
        """Deliveries neither delivered nor given up yet."""
        with self._cond:
            return len(self._queue) + self._busy

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivery was delivered or given up; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def clear(self) -> None:
        """Forget queued deliveries and the attempt log (an emulator's reset)."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._log.clear()
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread; queued deliveries are dropped. Safe to call twice."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._service.timeout + 1)

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        with build_client(self._service, transport=self._transport) as client:
            while (job := self._next_due()) is not None:
                attempt = self._post(client, job)
                self._finish(job, attempt)

    def _next_due(self) -> _Job | None:
        with self._cond:
            while not self._closed:
                if not self._queue:
                    self._cond.wait()
                    continue
                wait = self._queue[0].due - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._busy += 1
                return heapq.heappop(self._queue)
            return None

    def _post(self, client: httpx.Client, job: _Job) -> Attempt:
        started = self._clock()
        last = job.number > len(self.delays)
        try:
            headers = {**job.headers, **(job.sign(job.body) if job.sign else {})}
            response = client.post(job.url, content=job.body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is a failed attempt
            return Attempt(job.url, job.label, job.number, started, None, str(exc), last)
        delivered = 200 <= response.status_code < 300
        return Attempt(
            job.url, job.label, job.number, started, response.status_code, None, delivered or last
        )

    def _finish(self, job: _Job, attempt: Attempt) -> None:
        with self._cond:
            self._busy -= 1
            if job.generation != self._generation:
                self._cond.notify_all()
                return
            self._log.append(attempt)
            if not attempt.final and not self._closed:
                job.due = self._clock() + self.delays[job.number - 1]
                job.number += 1
                job.seq = next(self._seq)
                heapq.heappush(self._queue, job)
            self._cond.notify_all()


def attempts_json(deliverer: WebhookDeliverer) -> list[dict[str, Any]]:
    """Every attempt of ``deliverer``, oldest first, as an emulator's ``GET
    /_emulator/deliveries`` lists them."""
    return [attempt.as_json() for attempt in deliverer.attempts()]


def stopped_with_the_server(deliverer: WebhookDeliverer) -> Lifespan[Starlette]:
    """An emulator app's ``lifespan``: its deliverer's thread stops when the server stops."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        deliverer.close()

    return lifespan
