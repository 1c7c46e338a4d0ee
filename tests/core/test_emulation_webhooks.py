"""The emulators' webhook deliverer: delivers, retries failures with growing delays, gives up."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from core.emulation import WebhookDeliverer

URL = "http://127.0.0.1:9/hooks/demo"


def _answers(*statuses: int | None) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A receiver answering ``statuses`` in turn (None: connection refused), then 200."""
    queue = list(statuses)
    seen: list[httpx.Request] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(request)
            status = queue.pop(0) if queue else 200
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status)

    return httpx.MockTransport(handler), seen


@pytest.fixture
def deliverer() -> Iterator[Callable[..., WebhookDeliverer]]:
    made: list[WebhookDeliverer] = []

    def make(transport: httpx.BaseTransport, **options: object) -> WebhookDeliverer:
        made.append(WebhookDeliverer("Test", transport=transport, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_a_delivery_reaches_its_url_with_its_body_and_headers(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    transport, seen = _answers()
    hooks = deliverer(transport)
    hooks.send(URL, b'{"event":"GiftCreate"}', {"X-Sig": "abc"}, label="GiftCreate")
    assert hooks.wait_idle(5)
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.content == b'{"event":"GiftCreate"}'
    assert request.headers["X-Sig"] == "abc"
    [attempt] = hooks.attempts()
    assert (attempt.label, attempt.number, attempt.status, attempt.delivered) == (
        "GiftCreate",
        1,
        200,
        True,
    )


def test_failures_are_retried_with_growing_delays_until_one_is_acknowledged(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    transport, seen = _answers(500, 404, None)  # even a 4xx is retried, as the services do
    hooks = deliverer(transport, delays=(1, 2, 4, 8), scale=0.01)
    hooks.send(URL, b"{}", {})
    assert hooks.wait_idle(5)
    attempts = hooks.attempts()
    assert [(a.number, a.status) for a in attempts] == [(1, 500), (2, 404), (3, None), (4, 200)]
    assert "refused" in (attempts[2].error or "")
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    # Lower bounds only: a busy machine may wait longer, never shorter.
    assert all(gap >= delay for gap, delay in zip(gaps, (0.01, 0.02, 0.04), strict=True))
    assert hooks.delays == pytest.approx((0.01, 0.02, 0.04, 0.08))
    assert len(seen) == 4
    assert [a.final for a in attempts] == [False, False, False, True]


def test_a_delivery_is_given_up_after_the_last_retry(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    transport, _ = _answers(*[503] * 10)
    hooks = deliverer(transport, delays=(1, 2), scale=0.001)
    hooks.send(URL, b"{}", {})
    assert hooks.wait_idle(5)
    attempts = hooks.attempts()
    assert [(a.number, a.status, a.final) for a in attempts] == [
        (1, 503, False),
        (2, 503, False),
        (3, 503, True),
    ]
    assert hooks.pending() == 0


def test_a_failing_delivery_does_not_hold_up_the_others(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.path.endswith("down") else 204)

    hooks = deliverer(httpx.MockTransport(handler), delays=(3600,))
    hooks.send(URL + "/down", b"1", {}, label="first")
    hooks.send(URL, b"2", {}, label="second")
    deadline = time.monotonic() + 5
    while not any(a.delivered for a in hooks.attempts()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(a.label, a.status) for a in hooks.attempts()] == [("first", 500), ("second", 204)]
    assert hooks.pending() == 1  # the first waits an hour for its retry
    hooks.clear()
    assert hooks.pending() == 0
    assert hooks.attempts() == []


def test_plain_http_off_this_host_is_refused_without_leaving_the_machine(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    transport, seen = _answers()
    hooks = deliverer(transport, delays=())
    hooks.send("http://hooks.example.org/x", b"{}", {})
    assert hooks.wait_idle(5)
    [attempt] = hooks.attempts()
    assert attempt.status is None
    assert "refusing plain http://" in (attempt.error or "")
    assert seen == []


def test_negative_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        WebhookDeliverer("Test", delays=(1, -1))


def test_check_answers_the_status_of_a_get_or_none_without_an_answer(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    transport, seen = _answers(404, None)
    hooks = deliverer(transport)
    assert (hooks.check(URL), hooks.check(URL), hooks.check(URL)) == (404, None, 200)
    assert [r.method for r in seen] == ["GET"] * 3
    assert hooks.check("http://hooks.example.org/x") is None  # refused before it leaves


def test_an_emulators_deliverer_stops_with_its_server(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    import asyncio

    from starlette.applications import Starlette

    from core.emulation import stopped_with_the_server

    transport, seen = _answers()
    hooks = deliverer(transport)
    app = Starlette()

    async def serve_once() -> None:
        async with stopped_with_the_server(hooks)(app):  # as the server starts and stops it
            hooks.send(URL, b"{}", {}, label="while serving")
            assert hooks.wait_idle(5)

    asyncio.run(serve_once())
    hooks.send(URL, b"{}", {}, label="after the server stopped")
    assert hooks.pending() == 0
    assert [a.label for a in hooks.attempts()] == ["while serving"]
    assert len(seen) == 1


def test_every_emulator_lists_its_attempts_in_one_shape(
    deliverer: Callable[..., WebhookDeliverer],
) -> None:
    from core.emulation import attempts_json

    transport, _ = _answers(503)
    hooks = deliverer(transport, delays=(0.0,))
    hooks.send(URL, b"{}", {}, label="GiftCreate")
    assert hooks.wait_idle(5)
    listed = attempts_json(hooks)
    assert [{k: v for k, v in a.items() if k != "at"} for a in listed] == [
        {"url": URL, "event": "GiftCreate", "attempt": 1, "status": 503, "error": None}
        | {"delivered": False, "final": False},
        {"url": URL, "event": "GiftCreate", "attempt": 2, "status": 200, "error": None}
        | {"delivered": True, "final": True},
    ]
    assert listed[0]["at"] <= listed[1]["at"]
