"""Retries with exponential backoff and full jitter, as a transport that wraps another.

What is retried: dropped or refused connections, timeouts, and the policy's statuses (429, 5xx).
What is not: any other status (400, 401, 403, 404, 422... would fail the same way again), and a
request that may not be repeated. GET, HEAD, OPTIONS, PUT and DELETE may; POST and PATCH only when
the caller marks the request ``extensions["connector_idempotent"] = True`` (a sink does when the
payload carries the service's dedup key, so a second delivery cannot create a second record). A
request that never reached the server (the connection failed) or that it turned away unprocessed
(429) is always safe to send again.

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
from core.http.service import RetryPolicy

logger = logging.getLogger("core.http")

#: Set this request extension to ``True`` to let a POST or PATCH be retried.
IDEMPOTENT = "connector_idempotent"

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
    """Wraps ``inner`` and retries what :data:`RetryPolicy` allows."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        service_name: str,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._inner = inner
        self._name = service_name
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    def close(self) -> None:
        self._inner.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self._policy
        # A streamed body can be sent only once; reading it up front makes every retry identical.
        request.read()
        deadline = self._clock() + policy.total_timeout
        safe = is_retry_safe(request)
        for attempt in range(1, policy.attempts + 1):
            last = attempt == policy.attempts
            try:
                response = self._inner.handle_request(request)
            except _TRANSIENT as exc:
                may_retry = safe or isinstance(exc, _NOT_SENT)
                delay = self._backoff(attempt, None)
                if last or not may_retry or self._clock() + delay > deadline:
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
                # A 429 was turned away before it was processed: repeating it is always safe.
                if status not in policy.statuses or not (safe or status == 429) or last:
                    return response
                delay = self._backoff(attempt, retry_after(response.headers, self._clock()))
                if self._clock() + delay > deadline:
                    return response
                reason = str(response.status_code)
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
        raise AssertionError("unreachable: the last attempt returns or raises")

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
