"""Auth flows: static keys stepped by hand, and the OAuth password grant against a fake token server
(two-factor codes, refresh before expiry and on a 401, persisted rotation, bad credentials)."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from core.errors import AuthError, FatalError
from core.http import (
    Basic,
    BearerToken,
    HeaderKey,
    MemoryBudgetStore,
    MemoryTokenStore,
    OAuthPasswordGrant,
    QueryKey,
    RateLimit,
    Service,
    SqliteTokenStore,
    build_client,
)
from tests.core.http.fakes import FakeClock

TOKEN_URL = "https://crm.example.test/Token"
SERVICE = Service("CRM", "https://crm.example.test")
USER, PASSWORD = "ada@example.org", "correct-horse-battery"


def _step(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    """Run a one-step flow by hand: the request it sends, and that it stops after the response."""
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    return sent


# --- static keys --------------------------------------------------------------------------------


def test_bearer_token_sets_exactly_one_space_and_no_quotes() -> None:
    sent = _step(BearerToken("  abc.def-123 \n"), httpx.Request("GET", "https://h/x"))
    assert sent.headers["Authorization"] == "Bearer abc.def-123"


def test_header_key() -> None:
    sent = _step(HeaderKey("X-Api-Key", "k-123456"), httpx.Request("GET", "https://h/x"))
    assert sent.headers["X-Api-Key"] == "k-123456"
    assert "Authorization" not in sent.headers


def test_query_key_keeps_existing_parameters() -> None:
    sent = _step(QueryKey("api_key", "q-123456"), httpx.Request("GET", "https://h/x?page=2"))
    assert sent.url.params["api_key"] == "q-123456"
    assert sent.url.params["page"] == "2"


def test_basic() -> None:
    sent = _step(Basic("anystring", "mc-key-us21"), httpx.Request("GET", "https://h/x"))
    expected = base64.b64encode(b"anystring:mc-key-us21").decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"


def test_fingerprints_tell_keys_apart_without_revealing_them() -> None:
    one, two = BearerToken("key-number-one"), BearerToken("key-number-two")
    assert one.fingerprint != two.fingerprint
    assert one.fingerprint == BearerToken("key-number-one").fingerprint
    assert "key-number-one" not in one.fingerprint
    grant = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD)
    assert PASSWORD not in grant.fingerprint
    assert PASSWORD not in grant.store_key


# --- the OAuth password grant -------------------------------------------------------------------


class TokenServer:
    """A fake OAuth server plus one protected endpoint, ``GET /api/thing``."""

    def __init__(self, *, otp: str | None = None, expires_in: int = 3600) -> None:
        self.otp = otp
        self.expires_in = expires_in
        self.forms: list[dict[str, str]] = []
        self.api_calls: list[str] = []
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.issued = 0
        self.reject_all = False
        self.lock = threading.Lock()

    @property
    def logins(self) -> int:
        return sum(1 for f in self.forms if f["grant_type"] == "password" and self._complete(f))

    @property
    def refreshes(self) -> int:
        return sum(1 for f in self.forms if f["grant_type"] == "refresh_token")

    def _complete(self, form: dict[str, str]) -> bool:
        return not self.otp or "otp" in form

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.url.path == "/Token":
                return self._token(request)
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            self.api_calls.append(token)
            if token in self.access and not self.reject_all:
                return httpx.Response(200, json={"ok": True})
            return httpx.Response(401, text="Authorization has been denied for this request.")

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = dict(parse_qsl(request.content.decode()))
        self.forms.append(form)
        refused = httpx.Response(400, json={"error": "invalid_grant", "error_description": "no"})
        if form["grant_type"] == "password":
            if (form["username"], form["password"]) != (USER, PASSWORD):
                return refused
            if self.otp and "otp" not in form:
                return httpx.Response(202)
            if self.otp and form["otp"] != self.otp:
                return refused
        elif form["grant_type"] == "refresh_token":
            if form["refresh_token"] not in self.refresh:
                return refused
            self.refresh.discard(form["refresh_token"])  # rotation: a refresh token works once
        self.issued += 1
        access, refresh = f"access-{self.issued}-xyz", f"refresh-{self.issued}-xyz"
        self.access.add(access)
        self.refresh.add(refresh)
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "refresh_token": refresh,
                "userName": USER,
            },
        )


def _client(server: TokenServer, auth: OAuthPasswordGrant) -> httpx.Client:
    return build_client(SERVICE, auth, transport=httpx.MockTransport(server))


def test_flow_by_hand_logs_in_then_sends_the_bearer_token() -> None:
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD)
    flow = auth.sync_auth_flow(httpx.Request("GET", "https://crm.example.test/api/thing"))
    token_request = next(flow)
    assert (token_request.method, str(token_request.url)) == ("POST", TOKEN_URL)
    token_request.read()
    form = dict(parse_qsl(token_request.content.decode()))
    assert form == {"grant_type": "password", "username": USER, "password": PASSWORD}
    api_request = flow.send(
        httpx.Response(200, json={"access_token": "tok-abcdef", "expires_in": 3600})
    )
    assert api_request.headers["Authorization"] == "Bearer tok-abcdef"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))


def test_login_once_then_reuse_the_token() -> None:
    server, store = TokenServer(), MemoryTokenStore()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, token_store=store, store_key="crm:ada")
    with _client(server, auth) as client:
        assert client.get("/api/thing").status_code == 200
        assert client.get("/api/thing").status_code == 200
    assert server.logins == 1
    assert server.api_calls == ["access-1-xyz", "access-1-xyz"]
    saved = store.load("crm:ada")
    assert saved is not None
    assert saved["access_token"] == "access-1-xyz"
    assert saved["refresh_token"] == "refresh-1-xyz"


@pytest.mark.parametrize("as_callable", [False, True], ids=["string", "prompt"])
def test_two_factor_202_sends_the_code(as_callable: bool) -> None:
    server = TokenServer(otp="424242")
    prompts: list[str] = []

    def prompt() -> str:
        prompts.append("asked")
        return "424242"

    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, otp=prompt if as_callable else "424242")
    with _client(server, auth) as client:
        assert client.get("/api/thing").status_code == 200
    assert [f.get("otp") for f in server.forms] == [None, "424242"]
    assert prompts == (["asked"] if as_callable else [])


def test_two_factor_without_a_code_says_how_to_give_one() -> None:
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, service="CRM")
    with _client(TokenServer(otp="424242"), auth) as client, pytest.raises(FatalError) as caught:
        client.get("/api/thing")
    assert "two-factor code" in str(caught.value)
    assert "otp setting" in str(caught.value)
    hinted = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, service="CRM", otp_hint="set CRM_OTP")
    with _client(TokenServer(otp="424242"), hinted) as client, pytest.raises(FatalError) as caught:
        client.get("/api/thing")
    assert str(caught.value) == "CRM asked for a two-factor code: set CRM_OTP"


def test_wrong_two_factor_code_is_an_auth_error() -> None:
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, otp="000000", service="CRM")
    with (
        _client(TokenServer(otp="424242"), auth) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.get("/api/thing")
    assert str(caught.value).startswith("CRM refused the two-factor code (")


def test_bad_password_is_an_auth_error_without_the_password() -> None:
    auth = OAuthPasswordGrant(TOKEN_URL, USER, "wrong-password-123", service="CRM")
    with _client(TokenServer(), auth) as client, pytest.raises(AuthError) as caught:
        client.get("/api/thing")
    assert caught.value.service == "CRM"
    assert caught.value.status == 400
    assert "invalid_grant" in str(caught.value)
    assert "refused the username or password" in str(caught.value)
    assert "wrong-password-123" not in str(caught.value)


def test_refresh_shortly_before_expiry() -> None:
    server, clock = TokenServer(expires_in=3600), FakeClock()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, refresh_margin=300, clock=clock.time)
    with _client(server, auth) as client:
        client.get("/api/thing")
        clock.now += 3000  # 10 minutes left: not yet
        client.get("/api/thing")
        clock.now += 400  # 3 minutes left: inside the margin
        client.get("/api/thing")
    assert (server.logins, server.refreshes) == (1, 1)
    assert server.forms[1] == {"grant_type": "refresh_token", "refresh_token": "refresh-1-xyz"}
    assert server.api_calls == ["access-1-xyz", "access-1-xyz", "access-2-xyz"]


def test_a_short_lived_token_is_not_refreshed_on_every_request() -> None:
    server, clock = TokenServer(expires_in=120), FakeClock()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, refresh_margin=300, clock=clock.time)
    with _client(server, auth) as client:
        client.get("/api/thing")
        clock.now += 30
        client.get("/api/thing")
        clock.now += 40  # past half its life
        client.get("/api/thing")
    assert server.refreshes == 1


def test_a_401_refreshes_once_and_repeats_the_request() -> None:
    server = TokenServer()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD)
    with _client(server, auth) as client:
        client.get("/api/thing")
        server.access.clear()  # the server forgot the token early
        assert client.get("/api/thing").status_code == 200
    assert (server.logins, server.refreshes) == (1, 1)
    assert server.api_calls == ["access-1-xyz", "access-1-xyz", "access-2-xyz"]


def test_a_second_401_is_returned_not_looped_on() -> None:
    server = TokenServer()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD)
    with _client(server, auth) as client:
        client.get("/api/thing")
        server.reject_all = True  # even a fresh token is refused
        assert client.get("/api/thing").status_code == 401
    assert server.refreshes == 1
    assert len(server.api_calls) == 3


def test_a_refused_refresh_falls_back_to_logging_in() -> None:
    server, clock = TokenServer(), FakeClock()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, clock=clock.time)
    with _client(server, auth) as client:
        client.get("/api/thing")
        server.refresh.clear()  # refresh token revoked
        clock.now += 3500
        assert client.get("/api/thing").status_code == 200
    assert [f["grant_type"] for f in server.forms] == ["password", "refresh_token", "password"]


def test_rotated_tokens_are_saved_and_reused_after_a_restart(tmp_path: Path) -> None:
    server, clock = TokenServer(), FakeClock()
    path = tmp_path / ".connector" / "state.db"

    def grant() -> OAuthPasswordGrant:
        store = SqliteTokenStore(path)
        return OAuthPasswordGrant(
            TOKEN_URL, USER, PASSWORD, token_store=store, store_key="crm:ada", clock=clock.time
        )

    with _client(server, grant()) as client:
        client.get("/api/thing")
        clock.now += 3500
        client.get("/api/thing")  # refreshed: refresh-1 is spent, refresh-2 is current
    assert SqliteTokenStore(path).load("crm:ada") == {
        "access_token": "access-2-xyz",
        "refresh_token": "refresh-2-xyz",
        "expires_at": clock.now + 3600,
        "refresh_at": clock.now + 3300,
    }
    with _client(server, grant()) as client:  # a new process: no login, the saved token works
        client.get("/api/thing")
        clock.now += 3500
        client.get("/api/thing")  # and the saved refresh token is the live one
    assert (server.logins, server.refreshes) == (1, 2)
    assert server.api_calls[-2:] == ["access-2-xyz", "access-3-xyz"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_process_adopts_tokens_another_process_rotated(tmp_path: Path) -> None:
    server, clock = TokenServer(), FakeClock()
    store = SqliteTokenStore(tmp_path / "state.db")

    def grant() -> OAuthPasswordGrant:
        return OAuthPasswordGrant(
            TOKEN_URL, USER, PASSWORD, token_store=store, store_key="crm:ada", clock=clock.time
        )

    with _client(server, grant()) as first, _client(server, grant()) as second:
        first.get("/api/thing")
        second.get("/api/thing")  # loads the saved token: no second login
        clock.now += 3500
        first.get("/api/thing")  # refreshes: refresh-1 is spent
        second.get("/api/thing")  # its refresh-1 is dead; it takes up first's new tokens
    assert (server.logins, server.refreshes) == (1, 1)
    assert server.api_calls == ["access-1-xyz", "access-1-xyz", "access-2-xyz", "access-2-xyz"]


def test_concurrent_first_requests_log_in_once() -> None:
    server = TokenServer()
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD)
    with _client(server, auth) as client:
        threads = [threading.Thread(target=client.get, args=("/api/thing",)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert server.logins == 1
    assert server.api_calls == ["access-1-xyz"] * 8


def _streamed(server: TokenServer) -> httpx.MockTransport:
    """The same server, with bodies streamed as from a socket (not already in memory)."""

    def handler(request: httpx.Request) -> httpx.Response:
        response = server(request)
        return httpx.Response(
            response.status_code, headers=response.headers, content=iter([response.content])
        )

    return httpx.MockTransport(handler)


def test_the_whole_flow_fits_through_a_one_connection_cap() -> None:
    """With one connection allowed and bodies streamed, every answer (202, 401, tokens) must be
    closed before the next request goes out, or the flow would wait for its own slot for ever."""
    server = TokenServer(otp="424242")
    service = Service(
        "CRM", "https://crm.example.test", rate_limit=RateLimit(1000, 60, max_concurrency=1)
    )
    auth = OAuthPasswordGrant(TOKEN_URL, USER, PASSWORD, otp="424242")
    results: list[int] = []

    def run() -> None:
        with build_client(
            service, auth, store=MemoryBudgetStore(), transport=_streamed(server)
        ) as client:
            results.append(client.get("/api/thing").status_code)  # 202, then the code
            server.access.clear()
            results.append(client.get("/api/thing").status_code)  # 401, refresh, again

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "deadlocked"
    assert results == [200, 200]
    assert (server.logins, server.refreshes) == (1, 1)
