"""Retries with exponential backoff and full jitter, as a transport that wraps another.

What is retried: dropped or refused connections, timeouts, and the policy's statuses (429, 5xx).
What is not: any other status (400, 401, 403, 404, 422... would fail the same way again), and a
request that may not be repeated. GET, HEAD, OPTIONS, PUT and DELETE may; POST and PATCH only when
the caller marks the request ``extensions["connector_idempotent"] = True`` (a sink does when the
payload carries the service's dedup key, so a second delivery cannot create a second record). A
request that never reached the server (the connection failed) or that it turned away unprocessed
(429) is always safe to send again.

A 429 does not use up the tries meant for failures: its ``Retry-After`` is waited out (and
announced through ``on_wait``) however often it comes, as long as the wait ends within the policy's
``throttle_timeout``: a rate limit says "later", never "no", so it must not fail a record while the
run has time.
A caller that handles timeouts itself (a query asking for a smaller page) sets
``extensions["connector_retry_timeouts"] = False``.

When the tries run out, the last response is returned for the caller to judge, or, for a transport
failure, :class:`core.errors.RetriableError` is raised.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import httpx

from core.errors import FatalError, RetriableError
from core.http.governor import retry_after
from core.http.redact import redact_text, redact_url
from core.http.service import IDEMPOTENT, RETRY_TIMEOUTS, RetryPolicy

logger = logging.getLogger("core.http")


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# Failures that may pass: the network, the server hanging up, a timeout.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Failures before a single byte of the request left: safe to retry whatever the method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def is_retry_safe(request: httpx.Request) -> bool:
    """Whether sending ``request`` twice has the same effect as sending it once."""
    return request.method in _SAFE_METHODS or bool(request.extensions.get(IDEMPOTENT))


def describe_failure(exc: Exception) -> str:
    """A one-line cause for a transport failure, with any secret masked."""
    detail = redact_text(str(exc)).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class RetryTransport(httpx.BaseTransport):
    """Wraps ``inner`` and retries what :data:`RetryPolicy` allows.

    ``on_wait`` hears of every wait a 429 imposes (the run's progress line shows it).
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        service_name: str,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self._inner = inner
        self._name = service_name
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._on_wait = on_wait

    def close(self) -> None:
        self._inner.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self._policy
        # A streamed body can be sent only once; reading it up front makes every retry identical.
        request.read()
        started = self._clock()
        deadline = started + policy.total_timeout
        throttle_deadline = started + policy.throttle_timeout
        safe = is_retry_safe(request)
        retry_timeouts = request.extensions.get(RETRY_TIMEOUTS) is not False
        attempt = throttles = 0
        while True:
            try:
                response = self._inner.handle_request(request)
            except _TRANSIENT as exc:
                attempt += 1
                may_retry = safe or isinstance(exc, _NOT_SENT)
                if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, _NOT_SENT):
                    may_retry = may_retry and retry_timeouts
                delay = self._backoff(attempt, None)
                if attempt >= policy.attempts or not may_retry or self._clock() + delay > deadline:
                    raise self._give_up(request, exc, attempt) from exc
                reason = type(exc).__name__
            except httpx.TransportError as exc:
                # Bad URL scheme, proxy misconfiguration, a protocol error on our side: a retry
                # would fail the same way.
                msg = f"{self._name}: {request.method} {redact_url(request.url)} failed: "
                msg += describe_failure(exc)
                raise FatalError(msg) from exc
            else:
                status = response.status_code
                if status not in policy.statuses:
                    return response
                if status == 429:
                    # Turned away before it was processed: repeating it is always safe.
                    throttles += 1
                    delay = retry_after(response.headers, self._clock()) or 0.0
                    delay = delay or self._backoff(throttles, None)  # the server said when, or not
                    if self._clock() + delay > throttle_deadline:
                        return response
                    self._announce(delay)
                    reason = f"429 (throttled {throttles} times)"
                else:
                    attempt += 1
                    if not safe or attempt >= policy.attempts:
                        return response
                    if status == 504 and not retry_timeouts:
                        return response  # the caller asks again differently (a smaller page)
                    delay = self._backoff(attempt, retry_after(response.headers, self._clock()))
                    if self._clock() + delay > deadline:
                        return response
                    reason = str(status)
                response.close()
            logger.debug(
                "retrying %s %s in %.2fs after %s (attempt %d/%d)",
                request.method,
                redact_url(request.url),
                delay,
                reason,
                attempt + 1,
                policy.attempts,
            )
            self._sleep(delay)

    def _announce(self, delay: float) -> None:
        until = time.strftime("%H:%M:%S", time.localtime(self._clock() + delay))
        message = (
            f"waiting for the {self._name} rate limit until {until}"
            f" ({self._name} answered 429 Too Many Requests)"
        )
        logger.info(message)
        if self._on_wait is not None:
            self._on_wait(message)

    def _backoff(self, attempt: int, server_delay: float | None) -> float:
        """Full jitter over an exponential ceiling; the server's Retry-After wins when longer."""
        ceiling = min(self._policy.max_delay, self._policy.base_delay * 2 ** (attempt - 1))
        delay = self._jitter(0.0, ceiling)
        return max(delay, server_delay) if server_delay is not None else delay

    def _give_up(self, request: httpx.Request, exc: Exception, attempts: int) -> RetriableError:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        msg = (
            f"{self._name}: {request.method} {redact_url(request.url)} failed after {tries}: "
            f"{describe_failure(exc)}"
        )
        return RetriableError(msg)
