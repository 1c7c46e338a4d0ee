"""The rate governor: no request leaves before the service's budget allows it.

:class:`GovernedTransport` wraps another transport. Before each request it claims one slot from the
shared budget (a :class:`~core.http.store.BudgetStore`), waiting (and saying so through
``on_wait``) while there is none; once the answer is in, the request counts from then (a server
counts it on arrival, which a slow network can push into its next window). After each response it
reads the server's own account of the budget (``X-RateLimit-*``: its limit, what remains, and when
its window resets, which also tells how long its window is) and, on a 429, the ``Retry-After``
delay, and writes both back to the store so every client and process sharing the budget slows
down together. A per-process semaphore caps concurrent connections when the service
limits them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime

import httpx

from core.http.budget import BudgetStore
from core.http.service import RateLimit

logger = logging.getLogger("core.http")

# An X-RateLimit-Reset below this is a number of seconds from now, not an epoch (some services send
# the delta; no epoch timestamp is this small since 2001).
_EPOCH_THRESHOLD = 1e9


def retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (seconds or an HTTP date), if any."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _header_number(headers: httpx.Headers, name: str | None) -> float | None:
    if name is None or (value := headers.get(name)) is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


_semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _semaphore(key: str, size: int) -> threading.BoundedSemaphore:
    """One semaphore per budget per process, so two clients on one credential share the cap."""
    with _semaphores_lock:
        return _semaphores.setdefault((key, size), threading.BoundedSemaphore(size))


class _ReleasingStream(httpx.SyncByteStream):
    """A response body that frees its concurrency slot when closed: the connection stays busy until
    the body has been read, not just until the headers arrived."""

    def __init__(self, inner: httpx.SyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            if not self._released:
                self._released = True
                self._release()


class GovernedTransport(httpx.BaseTransport):
    """Wraps ``inner`` so that every request first takes a slot from the budget ``key``."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        service_name: str,
        rate_limit: RateLimit,
        key: str,
        store: BudgetStore,
        on_wait: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._inner = inner
        self._name = service_name
        self._limit = rate_limit
        self._key = key
        self._store = store
        self._on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        size = rate_limit.max_concurrency
        self._semaphore = _semaphore(key, size) if size else None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The slot is claimed after the connection slot, so the time logged for it is the time the
        # request really leaves; claiming first and queueing later would undercount the window.
        if self._semaphore is not None:
            self._semaphore.acquire()
        try:
            claimed_at = self._claim()
            if logger.isEnabledFor(logging.DEBUG):  # -vv: each request's line says what is left
                request.extensions["connector_budget"] = self._left
            try:
                response = self._inner.handle_request(request)
            finally:
                self._store.settle(self._key, claimed_at, self._clock())
            self._learn(response)
        except BaseException:
            if self._semaphore is not None:
                self._semaphore.release()
            raise
        if self._semaphore is not None:
            if not response.is_closed and isinstance(response.stream, httpx.SyncByteStream):
                response.stream = _ReleasingStream(response.stream, self._semaphore.release)
            else:  # the body is already in memory: nothing holds the connection any more
                self._semaphore.release()
        return response

    def close(self) -> None:
        self._inner.close()

    def _claim(self) -> float:
        """Block until the budget grants one request; the time it was granted at."""
        limit, window = self._limit.requests, self._limit.per_seconds
        while True:
            now = self._clock()
            wait = self._store.take(self._key, limit, window, now)
            if wait <= 0:
                return now
            self._announce(wait)
            self._sleep(wait)

    def _left(self) -> str:
        """``4,990 of 5,000 left``: the budget's room now (the server's count where it gave one)."""
        used, limit, _ = self._store.usage(
            self._key, self._limit.requests, self._limit.per_seconds, self._clock()
        )
        return f"{max(limit - used, 0):,} of {limit:,} left"

    def _announce(self, wait: float) -> None:
        now = self._clock()
        usage = self._store.usage(self._key, self._limit.requests, self._limit.per_seconds, now)
        until = time.strftime("%H:%M:%S", time.localtime(now + wait))
        if usage.blocked_until > now:
            why = f"{self._name} asked to retry later"
        else:
            why = f"{usage.used:,}/{usage.limit:,} used"
        message = f"waiting for the {self._name} rate limit until {until} ({why})"
        logger.info(message)
        if self._on_wait is not None:
            self._on_wait(message)

    def _learn(self, response: httpx.Response) -> None:
        """Fold what the server said about the budget into the shared store."""
        now = self._clock()
        headers = response.headers
        if response.status_code == 429:
            delay = retry_after(headers, now)
            if delay:
                self._store.block_until(self._key, now + delay)
        remaining = _header_number(headers, self._limit.header_remaining)
        reset = _header_number(headers, self._limit.header_reset)
        if remaining is None or reset is None:
            return
        if reset < _EPOCH_THRESHOLD:
            reset += now
        limit = _header_number(headers, self._limit.header_limit)
        self._store.observe(self._key, int(remaining), reset, int(limit) if limit else None, now)
