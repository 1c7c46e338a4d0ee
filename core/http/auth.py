"""Credentials as ``httpx.Auth`` flows: static keys, and the OAuth password grant with refresh.

Each class registers its secrets for redaction when it is built and exposes a ``fingerprint`` (a
hash prefix, never the secret) that names the rate budget it draws from::

    client = build_client(service, BearerToken(api_key))

The flows are generators (``response = yield request``), so they can be unit-tested by stepping
them with hand-built responses, without any transport.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.errors import AuthError, FatalError, RetriableError
from core.http.redact import redact_text, register_basic_credentials, register_secret
from core.http.service import IDEMPOTENT, fingerprint
from core.http.store import TokenStore

Flow = Generator[httpx.Request, httpx.Response, None]


def malformed(value: str, *, in_header: bool = True) -> str | None:
    """What makes ``value`` unusable as a credential, or None: sent as it is, an empty key or
    one with a line break would fail inside the HTTP library with a message about bytes."""
    if not value:
        return "is empty"
    if any(char in value for char in "\r\n"):
        return "holds a line break (a key is one line)"
    if any(not char.isprintable() for char in value):
        return "holds a control character"
    if in_header and not value.isascii():
        return "holds a character that is not ASCII (pasted through a word processor?)"
    return None


class BearerToken(httpx.Auth):
    """``Authorization: Bearer <token>``: exactly one space, no quotes (some servers are strict)."""

    def __init__(self, token: str) -> None:
        self._token = token.strip()
        register_secret(self._token)
        self.fingerprint = fingerprint(self._token)
        #: Why the token cannot be sent, if it cannot: build_client refuses it, naming the service.
        self.malformed = malformed(self._token)

    def auth_flow(self, request: httpx.Request) -> Flow:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class HeaderKey(httpx.Auth):
    """A key in a header of the service's choosing, e.g. ``X-Api-Key: <value>``."""

    def __init__(self, header: str, value: str) -> None:
        self._header = header
        self._value = value.strip()
        register_secret(self._value)
        self.fingerprint = fingerprint(self._value)
        self.malformed = malformed(self._value)

    def auth_flow(self, request: httpx.Request) -> Flow:
        request.headers[self._header] = self._value
        yield request


class QueryKey(httpx.Auth):
    """A key in the query string, e.g. ``?api_key=<value>`` (masked in every log line)."""

    def __init__(self, param: str, value: str) -> None:
        self._param = param
        self._value = value.strip()
        register_secret(self._value)
        self.fingerprint = fingerprint(self._value)
        self.malformed = malformed(self._value, in_header=False)

    def auth_flow(self, request: httpx.Request) -> Flow:
        request.url = request.url.copy_merge_params({self._param: self._value})
        yield request


class Basic(httpx.BasicAuth):
    """HTTP Basic; some services put the API key in the password and ignore the user."""

    def __init__(self, user: str, password: str) -> None:
        super().__init__(user, password)
        register_basic_credentials(user, password)
        self.fingerprint = fingerprint(user, password)
        self.malformed = malformed(password, in_header=False)  # sent base64-encoded


class OAuthPasswordGrant(httpx.Auth):
    """The OAuth 2 password grant, with two-factor codes, refresh, and persisted tokens.

    * Tokens are loaded from ``token_store`` first, so a restart does not log in again.
    * No token: POST ``grant_type=password`` (form-encoded) to ``token_url``. A 202 answer means a
      two-factor code is needed; the request is repeated with an ``otp`` field taken from ``otp``
      (a string, or a callable that finds it, e.g. in the environment or by asking on a
      terminal); without one, the error says how to give it (``otp_hint``).
    * ``refresh_margin`` seconds before expiry, and once on a 401, the token is refreshed with
      ``grant_type=refresh_token`` (or, if that fails, by logging in again); the 401'd request is
      then sent once more.
    * Every new token pair is saved to ``token_store`` at once: servers may rotate refresh tokens.

    Bad credentials raise :class:`~core.errors.AuthError`. Sync clients only (token responses are
    read inside the flow).
    """

    requires_request_body = True  # the request may be sent twice (after a 401)

    def __init__(
        self,
        token_url: str,
        username: str,
        password: str,
        *,
        otp: str | Callable[[], str] | None = None,
        token_store: TokenStore | None = None,
        store_key: str | None = None,
        refresh_margin: float = 300,
        service: str | None = None,
        otp_hint: str = "set the connector's otp setting, or run it on a terminal to be asked",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token_url = token_url
        self._username = username
        self._password = password
        self._otp = otp
        self._otp_hint = otp_hint
        self._store = token_store
        self._margin = refresh_margin
        self._service = service or urlsplit(token_url).hostname or token_url
        self._clock = clock
        self.fingerprint = fingerprint(token_url, username)
        self.store_key = store_key or f"oauth:{self.fingerprint}"
        self._tokens: dict[str, Any] | None = None
        self._loaded = False
        # Held while a token request is in flight, so concurrent requests wait for one login
        # instead of each logging in.
        self._lock = threading.Lock()
        register_secret(password)

    # --- the flow -----------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Flow:
        with self._lock:
            token = yield from self._current_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # Read (and so close) the 401 before waiting for the lock: until then it holds a
        # concurrency slot, which the thread holding the lock may need for its token request.
        response.read()
        with self._lock:
            if self._access_token() == token:  # no other request has renewed it meanwhile
                yield from self._renew()
            token = self._access_token() or ""
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def _current_token(self) -> Generator[httpx.Request, httpx.Response, str]:
        if not self._loaded:
            self._loaded = True
            if self._store is not None and (saved := self._store.load(self.store_key)):
                self._remember(saved)
        if self._tokens is None:
            yield from self._login()
        elif self._expiring():
            yield from self._renew()
        return self._access_token() or ""

    def _renew(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self._adopt_saved():
            return
        refresh = (self._tokens or {}).get("refresh_token")
        if refresh:
            response = yield from self._exchange(
                {"grant_type": "refresh_token", "refresh_token": refresh}
            )
            if response.status_code == 200:
                self._accept(response)
                return
            self._raise_unless_refused(response)
        yield from self._login()

    def _login(self) -> Generator[httpx.Request, httpx.Response, None]:
        form = {"grant_type": "password", "username": self._username, "password": self._password}
        response = yield from self._exchange(form)
        refused = "username or password"
        if response.status_code == 202:
            form["otp"] = self._one_time_code()
            refused = "two-factor code"
            response = yield from self._exchange(form)
            if response.status_code == 202:
                raise AuthError(self._service, 401, "it was not accepted", credential=refused)
        if response.status_code != 200:
            self._raise_unless_refused(response)
            detail = self._error_detail(response)
            raise AuthError(self._service, response.status_code, detail, credential=refused)
        self._accept(response)

    # --- helpers ------------------------------------------------------------------------------

    def _exchange(
        self, form: dict[str, str]
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """POST ``form`` to the token endpoint; the answer comes back read (and so closed)."""
        # Logging in or refreshing twice is harmless (a failed refresh falls back to a login), so
        # the retry layer may repeat these POSTs.
        request = httpx.Request("POST", self._token_url, data=form, extensions={IDEMPOTENT: True})
        response = yield request
        response.read()  # the body is parsed here, inside the flow (hence sync clients only)
        return response

    def _one_time_code(self) -> str:
        code = self._otp() if callable(self._otp) else self._otp
        if not code:
            msg = f"{self._service} asked for a two-factor code: {self._otp_hint}"
            raise FatalError(msg)
        register_secret(code)
        return code.strip()

    def _accept(self, response: httpx.Response) -> None:
        """Take the tokens from a 200 answer, and save them before anything else can fail."""
        try:
            body = response.json()
            access = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            msg = f"{self._service} answered the token request without an access_token"
            raise FatalError(msg) from None
        tokens: dict[str, Any] = {"access_token": access}
        refresh = body.get("refresh_token") or (self._tokens or {}).get("refresh_token")
        if refresh:
            tokens["refresh_token"] = str(refresh)
        # No lifetime given: keep the token until the server answers 401.
        with contextlib.suppress(KeyError, TypeError, ValueError):
            lifetime = float(body["expires_in"])
            tokens["expires_at"] = self._clock() + lifetime
            # Never less than half the lifetime early, or a short-lived token would be refreshed
            # on every request.
            tokens["refresh_at"] = tokens["expires_at"] - min(self._margin, lifetime / 2)
        self._remember(tokens)
        if self._store is not None:
            self._store.save(self.store_key, tokens)

    def _adopt_saved(self) -> bool:
        """Take up tokens another process saved since ours were loaded; True if they are good.

        Refresh tokens may be single-use: once another process has rotated ours, only the saved
        one works, and refreshing with ours would force a new login (and maybe a 2FA prompt).
        """
        saved = self._store.load(self.store_key) if self._store is not None else None
        if not saved or saved.get("access_token") == self._access_token():
            return False
        self._remember(saved)
        return not self._expiring()

    def _remember(self, tokens: dict[str, Any]) -> None:
        self._tokens = dict(tokens)
        register_secret(tokens.get("access_token"))
        register_secret(tokens.get("refresh_token"))

    def _access_token(self) -> str | None:
        token = (self._tokens or {}).get("access_token")
        return str(token) if token else None

    def _expiring(self) -> bool:
        tokens = self._tokens or {}
        refresh_at = tokens.get("refresh_at")
        if not isinstance(refresh_at, int | float):
            expires_at = tokens.get("expires_at")
            if not isinstance(expires_at, int | float):
                return False
            refresh_at = expires_at - self._margin
        return self._clock() >= refresh_at

    def _raise_unless_refused(self, response: httpx.Response) -> None:
        """Return for a refused credential (400/401: log in or fail); raise for anything else."""
        status = response.status_code
        if status in (400, 401):
            return
        detail = self._error_detail(response)
        if status == 429 or status >= 500:
            msg = f"{self._service} token request failed ({status})" + (
                f": {detail}" if detail else ""
            )
            raise RetriableError(msg, status=status)
        msg = f"{self._service} token request answered {status}" + (f": {detail}" if detail else "")
        raise FatalError(msg)

    @staticmethod
    def _error_detail(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return redact_text(response.text.strip()[:200])
        if not isinstance(body, dict):
            return ""
        parts = [str(body[k]) for k in ("error", "error_description") if body.get(k)]
        return redact_text(": ".join(parts)[:200])
