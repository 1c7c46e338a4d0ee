"""Givebutter as the central client sees it: where, how fast, with which key, how errors read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.http import RateLimit, Service

if TYPE_CHECKING:  # what a request needs: `validate` checks these settings and sends none
    import httpx

    from core.context import Context

DEFAULT_BASE_URL = "https://api.givebutter.com"

#: 500 requests a minute per account; past it Givebutter answers 429 with Retry-After.
RATE_LIMIT = RateLimit(requests=500, per_seconds=60)


class GivebutterSettings(BaseModel):
    """The credential every Givebutter stream needs."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(description="Dashboard > Settings > Integrations > API Keys")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="for an emulator or a proxy")


def describe_error(response: httpx.Response) -> str:
    """Laravel's ``{"message", "errors": {field: [...]}}``: the message and first field error."""
    from core.http import error_body

    body = error_body(response)
    if isinstance(body, str):
        return body
    message = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field, problems in errors.items():
            first = problems[0] if isinstance(problems, list) and problems else problems
            return f"{message} ({field}: {first})" if message else f"{field}: {first}"
    return message


def givebutter_service(base_url: str) -> Service:
    return Service(
        name="Givebutter", base_url=base_url, rate_limit=RATE_LIMIT, describe_error=describe_error
    )


def givebutter_client(
    settings: GivebutterSettings, context: Context
) -> tuple[httpx.Client, Service]:
    """The central client for Givebutter, authenticated with the account's API key."""
    from core.http import BearerToken

    service = givebutter_service(settings.base_url)
    auth = BearerToken(settings.api_key.get_secret_value())
    return context.http_client(service, auth), service
