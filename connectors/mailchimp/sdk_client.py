"""The mailchimp-marketing SDK's ``ApiClient`` on the project's central client.

Imported by :func:`connectors.mailchimp.service.lists_api` only, so the SDK (and ``requests``,
which it imports) is loaded by the commands that reach Mailchimp and by no other.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from mailchimp_marketing.api_client import ApiClient

from connectors.mailchimp.service import SdkResponse
from core.http import IDEMPOTENT

# POSTs that cannot create anything twice: Mailchimp keys members by address, so a repeated batch
# upsert or tag change ends in the same state. Other POSTs (campaigns, notes) are not retried.
_IDEMPOTENT_POSTS = re.compile(r"/lists/[^/]+(/members/[^/]+/tags)?$")


class CentralApiClient(ApiClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's ``ApiClient`` with its HTTP going through the central client.

    ``call_api`` (the SDK's) still builds the URL, query and headers, parses JSON answers into
    dicts, returns the response itself for an empty answer and raises ``ApiClientError(text,
    status_code)`` for a non-2xx one. Auth is the central client's, so the SDK never sees the key.
    """

    def __init__(self, client: httpx.Client, host: str) -> None:
        super().__init__({})
        self.host = host.rstrip("/")
        # call_api replaces the substring "server" anywhere in the URL with this; the host is
        # already resolved, so the replacement is switched off.
        self.server = ""
        self._client = client

    def request(
        self,
        method: str,
        url: str,
        query_params: list[tuple[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> SdkResponse:
        # The central client's User-Agent stays; the SDK's own headers (JSON content type) pass.
        sent = {k: v for k, v in (headers or {}).items() if k.lower() != "user-agent"}
        content = None
        if body is not None and method in {"POST", "PUT", "PATCH"}:
            content = json.dumps(body)
        extensions: dict[str, Any] = {}
        if method == "POST" and _IDEMPOTENT_POSTS.search(httpx.URL(url).path):
            extensions[IDEMPOTENT] = True
        response = self._client.request(
            method,
            url,
            params=query_params or None,
            headers=sent,
            content=content,
            extensions=extensions,
        )
        return SdkResponse(response)
