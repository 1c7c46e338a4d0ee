"""RetryTransport on its own, over a scripted fake server and a simulated clock: what is retried,
what is not, how long it waits, and what it gives back when the tries run out."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import formatdate

import httpx
import pytest

from core.errors import FatalError, RetriableError
from core.http import IDEMPOTENT, RETRY_TIMEOUTS, RetryPolicy, RetryTransport, retry_after
from tests.core.http.fakes import FakeClock, FakeServer, Reply

POLICY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=5.0, total_timeout=60.0)


def _ceiling(low: float, high: float) -> float:
    """Jitter that always picks the top of its range, so delays are predictable."""
    assert low == 0.0
    return high


def _send(
    *replies: Reply,
    method: str = "GET",
    policy: RetryPolicy = POLICY,
    extensions: Mapping[str, object] | None = None,
) -> tuple[httpx.Response, FakeServer, FakeClock]:
    clock = FakeClock()
    server = FakeServer(*replies, clock=clock)
    transport = RetryTransport(
        server.transport(),
        service_name="Fake",
        policy=policy,
        clock=clock.time,
        sleep=clock.sleep,
        jitter=_ceiling,
    )
    request = httpx.Request(
        method, "https://api.example.test/x", json={"a": 1}, extensions=dict(extensions or {})
    )
    return transport.handle_request(request), server, clock


def test_5xx_then_success() -> None:
    response, server, clock = _send(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    assert response.status_code == 200
    assert server.calls == 3
    assert clock.sleeps == [1.0, 2.0]  # base * 2**n


def test_backoff_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=3.0, total_timeout=600)
    _, _, clock = _send(httpx.Response(500), policy=policy)
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_is_full_between_zero_and_the_ceiling() -> None:
    seen: list[tuple[float, float]] = []

    def lowest(low: float, high: float) -> float:
        seen.append((low, high))
        return low

    clock = FakeClock()
    server = FakeServer(httpx.Response(503), httpx.Response(503), httpx.Response(200))
    transport = RetryTransport(
        server.transport(),
        service_name="Fake",
        policy=POLICY,
        clock=clock.time,
        sleep=clock.sleep,
        jitter=lowest,
    )
    transport.handle_request(httpx.Request("GET", "https://api.example.test/x"))
    assert seen == [(0.0, 1.0), (0.0, 2.0)]
    assert clock.sleeps == [0.0, 0.0]


def test_429_waits_for_retry_after_when_longer() -> None:
    response, server, clock = _send(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)
    )
    assert response.status_code == 200
    assert clock.sleeps == [7.0]


def test_retry_after_as_an_http_date() -> None:
    clock = FakeClock()
    headers = httpx.Headers({"Retry-After": formatdate(clock.now + 30, usegmt=True)})
    assert retry_after(headers, clock.now) == pytest.approx(30, abs=1)
    assert retry_after(httpx.Headers({"Retry-After": "junk"}), clock.now) is None
    assert retry_after(httpx.Headers({}), clock.now) is None


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset by peer"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_then_success(error: Exception) -> None:
    response, server, _ = _send(error, httpx.Response(200))
    assert response.status_code == 200
    assert server.calls == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    response, server, clock = _send(httpx.Response(status))
    assert response.status_code == status
    assert server.calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_unsafe_methods_are_not_retried_unless_marked_idempotent(method: str) -> None:
    response, server, _ = _send(httpx.Response(503), httpx.Response(200), method=method)
    assert (response.status_code, server.calls) == (503, 1)
    with pytest.raises(RetriableError):
        _send(httpx.ReadError("reset"), httpx.Response(200), method=method)

    marked = {IDEMPOTENT: True}
    response, server, _ = _send(
        httpx.Response(503), httpx.Response(200), method=method, extensions=marked
    )
    assert (response.status_code, server.calls) == (200, 2)
    assert [r.content for r in server.requests] == [b'{"a":1}', b'{"a":1}']


def test_a_post_that_never_connected_or_was_throttled_is_retried() -> None:
    response, server, _ = _send(httpx.ConnectError("refused"), httpx.Response(201), method="POST")
    assert (response.status_code, server.calls) == (201, 2)
    response, server, _ = _send(httpx.Response(429), httpx.Response(201), method="POST")
    assert (response.status_code, server.calls) == (201, 2)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_safe_methods_are_retried_by_default(method: str) -> None:
    response, server, _ = _send(httpx.Response(500), httpx.Response(200), method=method)
    assert (response.status_code, server.calls) == (200, 2)


def test_exhausted_status_returns_the_last_response() -> None:
    response, server, clock = _send(httpx.Response(503, json={"message": "down"}))
    assert response.status_code == 503
    assert server.calls == POLICY.attempts
    assert len(clock.sleeps) == POLICY.attempts - 1


def test_exhausted_transport_errors_raise_retriable_naming_service_and_cause() -> None:
    with pytest.raises(RetriableError) as caught:
        _send(httpx.ConnectError("connection refused"))
    message = str(caught.value)
    assert "Fake" in message
    assert "ConnectError: connection refused" in message
    assert "4 attempts" in message


def test_total_timeout_stops_retrying_early() -> None:
    policy = RetryPolicy(attempts=10, base_delay=4.0, max_delay=100.0, total_timeout=20.0)
    response, server, clock = _send(httpx.Response(503), policy=policy)
    assert response.status_code == 503
    assert clock.sleeps == [4.0, 8.0]  # the next (16 s) would pass the 20 s budget
    assert server.calls == 3


def test_a_retry_after_beyond_the_throttle_timeout_returns_at_once() -> None:
    policy = RetryPolicy(attempts=4, throttle_timeout=600)
    response, server, clock = _send(
        httpx.Response(429, headers={"Retry-After": "3600"}), policy=policy
    )
    assert (response.status_code, server.calls, clock.sleeps) == (429, 1, [])


def test_an_hour_long_retry_after_is_waited_out() -> None:
    # A fixed hourly window (Virtuous's) can ask for most of an hour; the run waits and finishes.
    response, server, clock = _send(
        httpx.Response(429, headers={"Retry-After": "3500"}), httpx.Response(200)
    )
    assert (response.status_code, server.calls, clock.sleeps) == (200, 2, [3500.0])


def test_a_storm_of_429s_longer_than_the_attempts_is_waited_out_and_announced() -> None:
    clock, heard = FakeClock(), []
    throttled = httpx.Response(429, headers={"Retry-After": "2"})
    server = FakeServer(*[throttled] * 7, httpx.Response(200), clock=clock)
    transport = RetryTransport(
        server.transport(),
        service_name="Fake",
        policy=POLICY,  # 4 attempts: a 429 does not use them up
        clock=clock.time,
        sleep=clock.sleep,
        jitter=_ceiling,
        on_wait=heard.append,
    )
    request = httpx.Request("POST", "https://api.example.test/x", json={"a": 1})
    assert transport.handle_request(request).status_code == 200
    assert clock.sleeps == [2.0] * 7  # the server's word, not an exponential guess
    assert len(heard) == 7
    assert heard[0].startswith("waiting for the Fake rate limit until ")
    assert "429" in heard[0]


def test_a_storm_of_many_429s_never_turns_into_a_failure_while_time_remains() -> None:
    # Rate-limit waits are only bounded by the throttle timeout: 50 throttles in a row (far more
    # than any count of attempts) are waited out, and the request goes through.
    throttled = httpx.Response(429, headers={"Retry-After": "30"})
    response, server, clock = _send(*[throttled] * 50, httpx.Response(200))
    assert (response.status_code, server.calls) == (200, 51)
    assert clock.sleeps == [30.0] * 50


def test_throttling_is_bounded_by_the_throttle_timeout_alone() -> None:
    policy = RetryPolicy(attempts=4, throttle_timeout=100)
    response, server, clock = _send(
        httpx.Response(429, headers={"Retry-After": "30"}), policy=policy
    )
    # 3 waits of 30 s fit in 100 s; a 4th would end past it, so the 429 reaches the caller.
    assert (response.status_code, server.calls, clock.sleeps) == (429, 4, [30.0] * 3)


def test_a_caller_that_handles_timeouts_gets_them_at_once() -> None:
    mine = {IDEMPOTENT: True, RETRY_TIMEOUTS: False}
    with pytest.raises(RetriableError):
        _send(httpx.ReadTimeout("slow"), httpx.Response(200), method="POST", extensions=mine)
    response, server, _ = _send(
        httpx.Response(504), httpx.Response(200), method="POST", extensions=mine
    )
    assert (response.status_code, server.calls) == (504, 1)
    # Everything else is retried as usual, and a connection that never opened is not a timeout.
    response, server, _ = _send(
        httpx.Response(500), httpx.Response(200), method="POST", extensions=mine
    )
    assert (response.status_code, server.calls) == (200, 2)
    response, server, _ = _send(
        httpx.ConnectTimeout("no route"), httpx.Response(200), method="POST", extensions=mine
    )
    assert (response.status_code, server.calls) == (200, 2)


def test_errors_that_a_retry_cannot_fix_are_fatal() -> None:
    with pytest.raises(FatalError):
        _send(httpx.UnsupportedProtocol("ftp is not supported"))
