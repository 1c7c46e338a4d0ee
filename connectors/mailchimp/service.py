"""How the Mailchimp connector reaches Mailchimp: settings, the service, and the SDK on the central
client.

The ``mailchimp-marketing`` SDK sends every request with module-level ``requests`` calls. Here its
``ApiClient.request`` is replaced, so each call goes through the central ``httpx`` client (auth,
the 10-connection cap, retries, timeouts, redaction) while the SDK keeps building the requests and
parsing the answers::

    lists = lists_api(settings, context)
    member = call(lists.get_list_member, settings.list_id, subscriber_hash(email))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from core.env import secret_format_error
from core.errors import ConnectorError, FatalError, InvalidRecord
from core.http import RateLimit, Service, redact_text

if TYPE_CHECKING:  # what a request needs: `validate` checks these settings and sends none
    import httpx
    from mailchimp_marketing.api.lists_api import ListsApi
    from mailchimp_marketing.api_client import ApiClientError

    from core.context import Context

#: Every member status Mailchimp reports; ``archived`` can be read but not written.
Status = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"]
STATUSES: tuple[Status, ...] = (
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
    "archived",
)
WritableStatus = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]

#: Mailchimp allows 10 simultaneous connections per API key and publishes no request quota.
MAX_CONNECTIONS = 10

DEFAULT_BASE_URL = "https://{dc}.api.mailchimp.com/3.0"


def describe_error(response: httpx.Response) -> str:
    """Mailchimp's ``detail`` (problem+json), with the fields its ``errors`` array names."""
    from core.http import error_body

    body = error_body(response)
    if isinstance(body, str):
        return body
    message = str(body.get("detail") or body.get("title") or "")
    problems = [
        f"{e.get('field') or '?'}: {e.get('message')}"
        for e in body.get("errors") or []
        if isinstance(e, dict) and e.get("message")
    ]
    if problems:
        message = f"{message} ({'; '.join(problems)})" if message else "; ".join(problems)
    return message


#: The service as the central client sees it; ``base_url`` is filled in per key.
MAILCHIMP = Service(
    name="Mailchimp",
    base_url="",
    # No published quota: the cap that matters is the connection count. The request budget is
    # only a backstop against a runaway loop; Mailchimp sends no rate-limit headers.
    rate_limit=RateLimit(
        requests=6000,
        per_seconds=60,
        max_concurrency=MAX_CONNECTIONS,
        header_limit=None,
        header_remaining=None,
        header_reset=None,
    ),
    # Mailchimp ends any request at 120 s on its side.
    timeout=120.0,
    describe_error=describe_error,
)


class MailchimpSettings(BaseModel):
    """The credential and audience shared by the Mailchimp source and sink."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(description="a Mailchimp API key, ending in its data center (-us21)")
    list_id: str = Field(min_length=1, description="the audience (list) id")
    base_url: str | None = Field(
        default=None,
        description="default https://<dc>.api.mailchimp.com/3.0, dc from the key's suffix",
    )

    @model_validator(mode="after")
    def _has_data_center(self) -> Self:
        if not self.base_url and data_center(self.api_key.get_secret_value()) is None:
            msg = (
                "the API key does not end with its data center (like -us21); check the key, "
                "or set base_url"
            )
            raise secret_format_error("api_key", msg)
        return self

    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        dc = data_center(self.api_key.get_secret_value())
        assert dc is not None  # checked by the validator
        return DEFAULT_BASE_URL.format(dc=dc)


def data_center(api_key: str) -> str | None:
    """The data center a key belongs to: ``us21`` for ``…-us21``; None when it names none."""
    _, dash, dc = api_key.strip().rpartition("-")
    return dc if dash and re.fullmatch(r"[a-z]+[0-9]+", dc) else None


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lowercased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


# --- the SDK on the central client ------------------------------------------------------------


class SdkResponse:
    """The part of a ``requests.Response`` the SDK reads, over an ``httpx.Response``.

    The SDK returns it as is for an empty answer (204), so callers may see one.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.raw = response

    @property
    def status_code(self) -> int:
        return self.raw.status_code

    @property
    def ok(self) -> bool:
        return self.raw.status_code < 400

    @property
    def headers(self) -> httpx.Headers:
        return self.raw.headers

    @property
    def text(self) -> str:
        return self.raw.text

    @property
    def content(self) -> bytes:
        return self.raw.content

    def json(self) -> Any:
        return self.raw.json()


def service_for(settings: MailchimpSettings) -> Service:
    return dataclasses.replace(MAILCHIMP, base_url=settings.resolved_base_url())


def lists_api(settings: MailchimpSettings, context: Context) -> ListsApi:
    """The SDK's lists (audiences) API for ``settings``, on the central client."""
    # The SDK is imported here, not at the top: commands that reach no service never load it.
    from mailchimp_marketing.api.lists_api import ListsApi

    from connectors.mailchimp.sdk_client import CentralApiClient
    from core.http import Basic

    service = service_for(settings)
    # Mailchimp ignores the user name of its basic auth; the key is the password.
    auth = Basic("user", settings.api_key.get_secret_value())
    client = context.http_client(service, auth)
    return ListsApi(CentralApiClient(client, service.base_url))


# --- errors -----------------------------------------------------------------------------------


class MailchimpRejected(InvalidRecord):
    """Mailchimp refused one request with a 4xx; ``status`` tells a 404 from a 400."""

    def __init__(self, message: str, *, status: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status


def translate(error: ApiClientError) -> ConnectorError:
    """The :mod:`core.errors` error an ``ApiClientError`` from the SDK stands for."""
    if isinstance(error.text, ConnectorError):
        # The central client raised (retries spent, plain http refused); call_api wrapped it.
        return error.text
    status = error.status_code
    if status is None:
        cause = error.text
        msg = f"Mailchimp: the request failed: {type(cause).__name__}: {redact_text(str(cause))}"
        return FatalError(msg)
    import httpx

    from core.http import raise_for_status

    text = error.text if isinstance(error.text, str) else json.dumps(error.text)
    response = httpx.Response(
        status, content=text.encode(), headers={"Content-Type": "application/problem+json"}
    )
    try:
        raise_for_status(response, MAILCHIMP)
    except InvalidRecord as rejected:
        return MailchimpRejected(rejected.message, status=status, field=_first_field(text))
    except ConnectorError as mapped:
        return mapped
    return FatalError(f"Mailchimp answered {status} but the SDK reported an error")


def _first_field(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
        return str(field) if field else None
    return None


T = TypeVar("T")


def unknown_audience(list_id: str) -> FatalError:
    """The error for a ``list_id`` Mailchimp does not know: the run stops, instead of every
    record being dead-lettered with "The requested resource could not be found"."""
    return FatalError(
        f"Mailchimp has no audience {list_id!r} for this API key; check list_id (the audience "
        "ID under Audience > Settings > Audience name and defaults)"
    )


def call_on_list(list_id: str, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """:func:`call` for an operation on the audience itself (list its members, add or update
    one, batch subscribe), where a 404 can only mean the audience does not exist."""
    try:
        return call(operation, list_id, *args, **kwargs)
    except MailchimpRejected as error:
        if error.status == 404:
            raise unknown_audience(list_id) from None
        raise


def call(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one SDK operation and raise a :mod:`core.errors` error if it failed."""
    from mailchimp_marketing.api_client import ApiClientError

    try:
        result = operation(*args, **kwargs)
    except ApiClientError as error:
        raise translate(error) from None
    if isinstance(result, SdkResponse) and not result.ok:
        # The SDK hands back an error with an empty body as if it were a success.
        raise translate(ApiClientError("", result.status_code))
    return result
