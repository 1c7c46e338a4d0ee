"""The one place an ``httpx.Client`` is built, and the one way its responses become errors.

:func:`build_client` stacks the policy layers over the real transport, outermost first::

    RetryTransport -> GovernedTransport -> _WireTransport -> httpx.HTTPTransport (or a test's)

so every retry takes its own slot from the rate budget, and every request that really leaves is
checked (no plain HTTP off this host) and logged (method, redacted URL, status, time; never headers
or bodies). :func:`raise_for_status` maps a final response to the error tree in :mod:`core.errors`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from core.errors import AuthError, FatalError, InvalidRecord, RetriableError
from core.http.budget import BudgetStore, process_budget_store
from core.http.governor import GovernedTransport, retry_after
from core.http.redact import install, redact_text, redact_url
from core.http.retry import RetryTransport
from core.http.service import Service, budget_key

logger = logging.getLogger("core.http")

USER_AGENT = "connector/0.1"

# Longest server message quoted in an error: enough to name the field, short enough for one line.
_MAX_DETAIL = 300


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: httpx.URL | str, service_name: str) -> None:
    """Refuse any scheme but HTTPS, except plain HTTP to this host (emulators, tests)."""
    url = httpx.URL(url)
    if url.scheme == "https" or (url.scheme == "http" and _is_loopback(url.host)):
        return
    if url.scheme == "http":
        msg = (
            f"{service_name}: refusing plain http:// to {url.host}: credentials and donor data "
            "would travel unencrypted; use https:// (http:// is allowed only to localhost)"
        )
    else:
        msg = f"{service_name}: unsupported URL scheme {url.scheme!r} in {redact_url(url)}"
    raise FatalError(msg)


class _WireTransport(httpx.BaseTransport):
    """The innermost layer: checks where each request goes, gives it a timeout if it came
    without one, and logs what really left."""

    def __init__(self, inner: httpx.BaseTransport, service_name: str, timeout: float) -> None:
        self._inner = inner
        self._name = service_name
        self._timeout = httpx.Timeout(timeout).as_dict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Checked per request, not only for base_url: a pagination "next" link or a redirect could
        # point anywhere.
        check_url(request.url, self._name)
        # The client puts its timeout on the requests it builds; a request an auth flow builds
        # itself (a token request) has none, and would wait for ever on a silent server.
        request.extensions.setdefault("timeout", self._timeout)
        started = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            logger.debug(
                "%s %s %s failed after %.3fs: %s",
                self._name,
                request.method,
                redact_url(request.url),
                time.perf_counter() - started,
                type(exc).__name__,
            )
            raise
        budget = request.extensions.get("connector_budget")  # set by the rate governor
        logger.debug(
            "%s %s %s -> %d in %.3fs%s",
            self._name,
            request.method,
            redact_url(request.url),
            response.status_code,
            time.perf_counter() - started,
            f", budget {budget()}" if callable(budget) else "",
        )
        return response

    def close(self) -> None:
        self._inner.close()


def build_client(
    service: Service,
    auth: httpx.Auth | None = None,
    *,
    store: BudgetStore | None = None,
    on_wait: Callable[[str], None] | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Client:
    """An ``httpx.Client`` for ``service``: auth, rate governor, retries, timeout and redaction.

    ``store`` holds the rate budget (default: one shared by this process); pass a
    :class:`~core.http.store.SqliteBudgetStore` on the state file to share it between processes.
    ``on_wait`` receives a one-line message whenever the budget makes a request wait.
    ``transport`` replaces the network (tests pass ``httpx.MockTransport``); ``clock`` and
    ``sleep`` replace wall time (tests, or an interruptible sleep for a clean shutdown).
    """
    install()
    if service.base_url:
        check_url(service.base_url, service.name)
    problem = getattr(auth, "malformed", None)  # set by the static-key flows of core.http.auth
    if problem:
        msg = f"the {service.name} {service.credential} {problem}; check the variable that sets it"
        raise FatalError(msg)
    layer: httpx.BaseTransport = _WireTransport(
        transport if transport is not None else httpx.HTTPTransport(),
        service.name,
        service.timeout,
    )
    if service.rate_limit is not None:
        layer = GovernedTransport(
            layer,
            service_name=service.name,
            rate_limit=service.rate_limit,
            key=budget_key(service, auth),
            store=store if store is not None else process_budget_store(),
            on_wait=on_wait,
            clock=clock,
            sleep=sleep,
        )
    layer = RetryTransport(
        layer,
        service_name=service.name,
        policy=service.retry,
        clock=clock,
        sleep=sleep,
        on_wait=on_wait,
    )
    return httpx.Client(
        base_url=service.base_url,
        auth=auth,
        transport=layer,
        timeout=httpx.Timeout(service.timeout),
        headers={"User-Agent": USER_AGENT},
        # Redirects are not followed: a redirect to another host would carry the credential there.
        follow_redirects=False,
    )


def error_message(response: httpx.Response, service: Service) -> str:
    """The server's explanation of a failed response, one line, secrets masked."""
    response.read()
    text = ""
    if service.describe_error is not None:
        # A body the service's describer did not expect must not hide the error being reported.
        with contextlib.suppress(Exception):
            text = service.describe_error(response)
    text = text or _body_message(response)
    text = " ".join(redact_text(text).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def error_body(response: httpx.Response) -> dict[str, Any] | str:
    """Where a service's ``describe_error`` starts: the JSON object of an error response, or, when
    the body is no such object, what it says as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    return body if isinstance(body, dict) else str(body)


def _body_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        for field in ("message", "error_description", "error", "detail", "title", "errors"):
            value = body.get(field)
            if isinstance(value, dict):
                value = value.get("message") or value
            if value:
                return value if isinstance(value, str) else str(value)
    return "" if body is None else str(body)


def _request_line(response: httpx.Response) -> str:
    """ " to GET https://host/path" for messages; the query is left out (it may hold keys)."""
    try:
        request = response.request
    except RuntimeError:  # a response built by hand, with no request attached
        return ""
    return f" to {request.method} {redact_url(request.url.copy_with(query=None))}"


def _denied(response: httpx.Response, service: Service, said: str) -> str:
    """What a 403 refused, named by its request: servers often say no more than "denied"."""
    try:
        request = response.request
    except RuntimeError:
        return said
    what = f"{request.method} {request.url.path}"
    message = f"the {service.credential}'s permission group does not allow {what}"
    return f"{message} ({service.name} said: {said})" if said else message


def raise_for_status(response: httpx.Response, service: Service) -> None:
    """Raise the :mod:`core.errors` error a failed response calls for; return on success.

    401 and 403 stop the run (:class:`AuthError`); 429 and 5xx, which reach here only once the
    retries are spent, are :class:`RetriableError`; any other 4xx is :class:`InvalidRecord`. A
    redirect (never followed) is a :class:`FatalError`. No message ever holds a registered secret.
    """
    status = response.status_code
    if status < 300 or status == 304:
        return
    if status < 400:
        # Redirects are not followed (see build_client); landing here means a wrong base URL or
        # an endpoint that moved, and the empty body would otherwise pass for a result.
        target = redact_url(response.headers.get("Location", "?"))
        msg = f"{service.name} redirected{_request_line(response)} to {target} ({status}); "
        msg += "redirects are not followed: check the service's base URL"
        raise FatalError(msg)
    detail = error_message(response, service)
    if status == 401:
        detail = detail or "check the API key or token"
        raise AuthError(service.name, status, detail, credential=service.credential)
    if status == 403:
        raise AuthError(service.name, status, _denied(response, service, detail))
    if status == 429 or status >= 500:
        delay = retry_after(response.headers, time.time())
        msg = f"{service.name} answered {status}{_request_line(response)}"
        msg += f": {detail}" if detail else ""
        raise RetriableError(msg, status=status, retry_after=delay)
    msg = f"{service.name} rejected the request ({status})"
    msg += f": {detail}" if detail else ""
    raise InvalidRecord(msg)
