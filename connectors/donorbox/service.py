"""Donorbox as the central client sees it: HTTP Basic with the login email and the API key."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.http import RateLimit, Service

if TYPE_CHECKING:  # what a request needs: `validate` checks these settings and sends none
    import httpx

    from core.context import Context

DEFAULT_BASE_URL = "https://donorbox.org"

#: Donorbox publishes no limit; one request a second keeps a sync polite and is still 6,000
#: donations a minute at 100 a page.
RATE_LIMIT = RateLimit(requests=60, per_seconds=60)


class DonorboxSettings(BaseModel):
    """The credential every Donorbox stream needs (the paid "API & Zapier" add-on)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, description="the organization's Donorbox login email")
    api_key: SecretStr = Field(description="Account > API & Zapier Integration > Set new API key")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="for an emulator or a proxy")


_HEADING = re.compile(r"<h1[^>]*>(.*?)</h1>|<title[^>]*>(.*?)</title>", re.I | re.S)


def describe_error(response: httpx.Response) -> str:
    """What Donorbox said: Devise's and Rails' ``{"error": ...}``, or the heading of the HTML
    error page a Rails app or its proxy sends, never the page itself."""
    from core.http import error_body

    body = error_body(response)
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or "")
    found = _HEADING.search(body)
    if found is not None:
        return html.unescape(found.group(1) or found.group(2)).strip()
    return "an HTML page with no heading" if "<" in body else body


def donorbox_service(base_url: str) -> Service:
    return Service(
        name="Donorbox", base_url=base_url, rate_limit=RATE_LIMIT, describe_error=describe_error
    )


def donorbox_client(settings: DonorboxSettings, context: Context) -> tuple[httpx.Client, Service]:
    """The central client for Donorbox, authenticated with the login email and API key."""
    from core.http import Basic

    service = donorbox_service(settings.base_url)
    auth = Basic(settings.email, settings.api_key.get_secret_value())
    return context.http_client(service, auth), service
