"""The stripe SDK's HTTP client, replaced by one that sends through the project's central client.

Imported by :func:`connectors.stripe.service.stripe_client` only, so the SDK is loaded by the
commands that reach Stripe and by no other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import stripe

from core.http import IDEMPOTENT

if TYPE_CHECKING:
    import httpx


class CentralHTTPClient(stripe.HTTPClient):
    """A ``stripe.HTTPClient`` that sends every request through the project's central client.

    The SDK's own retry loop is bypassed (:meth:`request_with_retries` makes exactly one call):
    the central client has already retried whatever was worth retrying, with the shared budget.
    The SDK's ``Authorization`` header is dropped because the central client's auth layer sets it,
    so a request can only succeed if it went through that layer.
    """

    name = "connector"

    def __init__(self, client: httpx.Client) -> None:
        super().__init__()
        self._client = client

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        sent = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        # Stripe replays a POST carrying an Idempotency-Key instead of acting twice, which is
        # exactly what makes it safe for the central client to retry.
        safe = any(k.lower() == "idempotency-key" for k in sent)
        response = self._client.request(
            method.upper(),
            url,
            headers=sent,
            content=post_data if post_data else None,
            extensions={IDEMPOTENT: True} if safe else {},
        )
        return response.content, response.status_code, response.headers

    def request_with_retries(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: Any = None,
        max_network_retries: int | None = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        return self.request(method, url, headers, post_data)

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        # Only file downloads stream; a buffered body read as one chunk serves them the same way.
        content, status, response_headers = self.request(method, url, headers, post_data)
        return iter([content]), status, response_headers

    def request_stream_with_retries(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: Any = None,
        max_network_retries: int | None = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        return self.request_stream(method, url, headers, post_data)

    def close(self) -> None:
        """Nothing to do: the run's context closes the central client."""
