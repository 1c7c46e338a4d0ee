"""The assembled client: URL safety, timeouts, layer order, budget keys, error mapping, and a few
runs against a real HTTP server on loopback (a tiny starlette app served by uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import AuthError, FatalError, InvalidRecord, RetriableError
from core.http import (
    BearerToken,
    MemoryBudgetStore,
    OAuthPasswordGrant,
    RateLimit,
    RetryPolicy,
    Service,
    SqliteBudgetStore,
    budget_key,
    build_client,
    error_body,
    raise_for_status,
    store_for,
)
from tests.core.http.fakes import FakeClock, FakeServer

FAST = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, total_timeout=10)
SERVICE = Service("Fake", "https://api.example.test", retry=FAST)


# --- safety -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    ["http://api.example.test", "http://10.0.0.5:8080", "ftp://files.example.test"],
)
def test_plain_http_is_refused_off_this_host(base_url: str) -> None:
    with pytest.raises(FatalError, match="Fake"):
        build_client(Service("Fake", base_url))


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8000", "http://127.5.6.7", "http://localhost:1", "http://[::1]:9"],
)
def test_plain_http_to_loopback_is_allowed(base_url: str) -> None:
    build_client(Service("Fake", base_url)).close()


def test_every_request_is_checked_not_only_the_base_url() -> None:
    server = FakeServer()
    with build_client(SERVICE, transport=server.transport()) as client, pytest.raises(FatalError):
        client.get("http://elsewhere.example.test/next-page")
    assert server.calls == 0


def test_every_client_has_the_service_timeout_and_no_redirects() -> None:
    with build_client(Service("Fake", "https://api.example.test", timeout=12.5)) as client:
        assert client.timeout == httpx.Timeout(12.5)
        assert client.follow_redirects is False


# --- layers -------------------------------------------------------------------------------------


def test_each_retry_takes_its_own_slot_from_the_budget() -> None:
    store, clock = MemoryBudgetStore(), FakeClock()
    service = Service("Fake", "https://api.example.test", rate_limit=RateLimit(100, 60), retry=FAST)
    server = FakeServer(httpx.Response(503), httpx.Response(200))
    auth = BearerToken("layer-test-key")
    with build_client(
        service,
        auth,
        store=store,
        transport=server.transport(),
        clock=clock.time,
        sleep=clock.sleep,
    ) as client:
        assert client.get("/x").status_code == 200
    assert store.usage(budget_key(service, auth), 100, 60, clock.now).used == 2


def test_on_wait_reports_the_wait() -> None:
    clock, waits = FakeClock(), list[str]()
    service = Service("Fake", "https://api.example.test", rate_limit=RateLimit(2, 60))
    with build_client(
        service,
        store=MemoryBudgetStore(),
        on_wait=waits.append,
        transport=FakeServer().transport(),
        clock=clock.time,
        sleep=clock.sleep,
    ) as client:
        for _ in range(3):
            client.get("/x")
    assert len(waits) == 1
    assert waits[0].startswith("waiting for the Fake rate limit until ")
    assert waits[0].endswith("(2/2 used)")


def test_budget_keys_follow_the_credential_not_the_client() -> None:
    service = Service("Fake", "https://api.example.test", rate_limit=RateLimit(1, 60))
    same = budget_key(service, BearerToken("key-one-abcdef"))
    assert same == budget_key(service, BearerToken("key-one-abcdef"))
    assert same != budget_key(service, BearerToken("key-two-abcdef"))
    assert same.startswith("fake:")
    assert "key-one" not in same
    pinned = Service("Fake", "https://x.test", budget_key="fake:org-42")
    assert budget_key(pinned, BearerToken("key-one-abcdef")) == "fake:org-42"


@dataclass
class _State:
    location: str


def test_store_for_uses_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / ".connector" / "state.db"
    store = store_for(_State(str(path)))
    assert isinstance(store, SqliteBudgetStore)
    assert store is store_for(_State(f"sqlite:///{path}"))
    assert isinstance(store_for(_State("postgresql://db/state")), MemoryBudgetStore)


# --- raise_for_status ---------------------------------------------------------------------------


def _raised(response: httpx.Response, service: Service = SERVICE) -> Exception:
    response.request = httpx.Request("POST", "https://api.example.test/api/Gift?api_key=abc")
    with pytest.raises(Exception) as caught:  # noqa: PT011  # each test checks the exact type
        raise_for_status(response, service)
    return caught.value


def test_success_passes() -> None:
    raise_for_status(httpx.Response(200), SERVICE)
    raise_for_status(httpx.Response(204), SERVICE)


def test_401_is_an_auth_error() -> None:
    error = _raised(httpx.Response(401, text="Authorization has been denied for this request."))
    assert isinstance(error, AuthError)
    assert error.status == 401
    assert str(error) == (
        "Fake refused the credential (401): Authorization has been denied for this request."
    )
    assert "API key" in str(_raised(httpx.Response(401)))


def test_403_names_what_is_lacking() -> None:
    body = {"message": "The key lacks the Gift:Write permission"}
    error = _raised(httpx.Response(403, json=body))
    assert isinstance(error, AuthError)
    assert str(error) == (
        "Fake denied access (403): the credential's permission group does not allow POST"
        " /api/Gift (Fake said: The key lacks the Gift:Write permission)"
    )


def test_403_with_a_generic_body_still_names_what_was_denied() -> None:
    body = {"message": "Authorization has been denied for this request."}
    error = _raised(httpx.Response(403, json=body))
    assert "does not allow POST /api/Gift" in str(error)
    assert "api_key" not in str(error)
    assert str(_raised(httpx.Response(403))) == (
        "Fake denied access (403): the credential's permission group does not allow POST /api/Gift"
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503, 520])
def test_throttling_and_server_errors_are_retriable(status: int) -> None:
    error = _raised(httpx.Response(status, headers={"Retry-After": "12"}, json={"message": "busy"}))
    assert isinstance(error, RetriableError)
    assert (error.status, error.retry_after) == (status, 12)
    assert str(error) == f"Fake answered {status} to POST https://api.example.test/api/Gift: busy"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "The argument cannot be null"}, "The argument cannot be null"),
        (
            {"error": {"code": "VALIDATION_FAILED", "message": "amount is required"}},
            "amount is required",
        ),
        ({"detail": "email is invalid"}, "email is invalid"),
        ({"error": "invalid_request", "error_description": "bad field"}, "bad field"),
    ],
)
def test_other_4xx_are_invalid_records_with_the_server_message(body: object, expected: str) -> None:
    error = _raised(httpx.Response(400, json=body))
    assert isinstance(error, InvalidRecord)
    assert str(error) == f"Fake rejected the request (400): {expected}"


def test_the_service_can_describe_its_own_errors() -> None:
    def describe(response: httpx.Response) -> str:
        state = response.json()["modelState"]
        return "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in state.items())

    service = Service("Fake", "https://api.example.test", describe_error=describe)
    body = {"message": "The request is invalid.", "modelState": {"gift.amount": ["required"]}}
    error = _raised(httpx.Response(422, json=body), service)
    assert str(error) == "Fake rejected the request (422): gift.amount: required"


def test_a_describer_that_fails_falls_back_to_the_body() -> None:
    def describe(response: httpx.Response) -> str:
        return str(response.json()["modelState"])

    service = Service("Fake", "https://api.example.test", describe_error=describe)
    error = _raised(httpx.Response(400, json={"message": "plain"}), service)
    assert str(error) == "Fake rejected the request (400): plain"


def test_error_body_gives_describers_an_object_or_text() -> None:
    assert error_body(httpx.Response(400, json={"message": "no"})) == {"message": "no"}
    assert error_body(httpx.Response(400, json=["no", "nope"])) == "['no', 'nope']"
    assert error_body(httpx.Response(502, text=" <html>Bad gateway</html>\n")) == (
        "<html>Bad gateway</html>"
    )


def test_a_redirect_is_fatal_and_says_where_it_went() -> None:
    error = _raised(httpx.Response(301, headers={"Location": "https://new.example.test/api"}))
    assert isinstance(error, FatalError)
    assert "https://new.example.test/api" in str(error)
    raise_for_status(httpx.Response(304), SERVICE)


def test_long_and_plain_text_bodies_are_cut_to_one_line() -> None:
    error = _raised(httpx.Response(404, text="<html>\n" + "x" * 1000 + "\n</html>"))
    assert isinstance(error, InvalidRecord)
    assert "\n" not in str(error)
    assert len(str(error)) < 400


# --- a real server on loopback ------------------------------------------------------------------


class _App:
    """Counts hits per path; /flaky fails once, /slow (and the token endpoint /slow-token)
    outlive the client timeout."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        routes = [
            Route("/flaky", self.flaky),
            Route("/slow", self.slow),
            Route("/ok", self.ok),
            Route("/slow-token", self.slow, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    def _hit(self, request: Request) -> int:
        self.hits[request.url.path] = self.hits.get(request.url.path, 0) + 1
        return self.hits[request.url.path]

    async def flaky(self, request: Request) -> Response:
        if self._hit(request) == 1:
            return JSONResponse({"message": "try again"}, 503, headers={"Retry-After": "0"})
        return JSONResponse({"auth": request.headers.get("authorization")})

    async def slow(self, request: Request) -> Response:
        self._hit(request)
        await asyncio.sleep(0.5)
        return JSONResponse({})

    async def ok(self, request: Request) -> Response:
        self._hit(request)
        return JSONResponse(
            {"ok": True},
            headers={
                "X-RateLimit-Remaining": "1",
                "X-RateLimit-Reset": str(int(time.time()) + 60),
                "X-RateLimit-Limit": "5000",
            },
        )


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, _App]]:
    app = _App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def test_real_server_retry_then_success(
    live: tuple[str, _App], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="core.http")
    url, app = live
    service = Service("Live", url, retry=FAST, rate_limit=RateLimit(100, 60))
    with build_client(service, BearerToken("live-key-123456"), store=MemoryBudgetStore()) as client:
        response = client.get("/flaky")
    raise_for_status(response, service)
    assert response.json() == {"auth": "Bearer live-key-123456"}
    assert app.hits["/flaky"] == 2
    wire = [r.getMessage() for r in caplog.records if "/flaky" in r.getMessage()]
    assert any("-> 503" in line for line in wire)
    assert any("-> 200" in line for line in wire)
    assert all("live-key-123456" not in line for line in caplog.messages)


def test_real_server_headers_reach_the_shared_budget(
    live: tuple[str, _App], tmp_path: Path
) -> None:
    url, _ = live
    store = SqliteBudgetStore(tmp_path / "state.db")
    service = Service("Live", url, rate_limit=RateLimit(5000, 3600), budget_key="live:org")
    with build_client(service, store=store) as client:
        client.get("/ok")
    assert store.usage("live:org", 5000, 3600, time.time()).used == 4999


def test_real_timeouts_are_retried_then_retriable(live: tuple[str, _App]) -> None:
    url, app = live
    service = Service("Live", url, timeout=0.1, retry=RetryPolicy(attempts=2, base_delay=0))
    before = app.hits.get("/slow", 0)
    with build_client(service) as client, pytest.raises(RetriableError) as caught:
        client.get("/slow")
    assert "ReadTimeout" in str(caught.value)
    assert "2 attempts" in str(caught.value)
    assert app.hits["/slow"] - before == 2


def test_a_token_request_has_the_service_timeout_too(live: tuple[str, _App]) -> None:
    # The auth flow builds its own token request; without the client's timeout on it, a token
    # endpoint that never answers would hang the run for good.
    url, app = live
    service = Service("Live", url, timeout=0.1, retry=RetryPolicy(attempts=2, base_delay=0))
    auth = OAuthPasswordGrant(f"{url}/slow-token", "ops@example.org", "pw-123456789")
    with build_client(service, auth) as client, pytest.raises(RetriableError) as caught:
        client.get("/ok")
    assert "/slow-token" in str(caught.value)
    assert "ReadTimeout" in str(caught.value)


def test_real_refused_connection_is_retried_then_retriable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    service = Service("Live", f"http://127.0.0.1:{port}", retry=FAST)
    with build_client(service) as client, pytest.raises(RetriableError) as caught:
        client.get("/anything")
    assert str(caught.value).startswith("Live: GET http://127.0.0.1:")
    assert "ConnectError" in str(caught.value)
    assert "3 attempts" in str(caught.value)
