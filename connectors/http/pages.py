"""The one paged-read loop every JSON source shares: send, check, parse, find the records, repeat.

Sources compose it with a paginator instead of writing their own ``while next_url:`` loop::

    request = PageRequest("/v1/transactions", {"per_page": 100})
    for records in walk_pages(client, service, request, NextUrlPaginator("links.next"), "data"):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from connectors.http.paginators import PageRequest, Paginator
from connectors.http.paths import dig
from core.errors import FatalError, InvalidRecord
from core.http import Service, redact_url

if TYPE_CHECKING:  # imported by the read: `validate` imports a source and sends nothing
    import httpx


def walk_pages(
    client: httpx.Client,
    service: Service,
    request: PageRequest,
    paginator: Paginator,
    records_path: str = "",
) -> Iterator[list[dict[str, Any]]]:
    """Yield the records of each page until ``paginator`` says there is no next page.

    401/403 raise :class:`~core.errors.AuthError`; 429 and 5xx have been retried by the central
    client before they reach here. Any other refusal stops the read: a list request that is wrong
    once is wrong for every page.
    """
    import httpx

    from core.http import raise_for_status

    paginator.init_request(request)
    previous: list[dict[str, Any]] | None = None
    while True:
        _check_origin(request.url, client.base_url, service)
        # Merged by hand: httpx replaces a URL's own query when given params, and a next-page
        # URL's query (?page=2) must survive.
        url = httpx.URL(request.url)
        if request.params:
            url = url.copy_merge_params(request.params)
        response = client.get(url, headers=request.headers)
        try:
            raise_for_status(response, service)
        except InvalidRecord as error:
            raise FatalError(error.message) from None
        body = _json(response, service)
        records = extract_records(body, records_path, service)
        if records and records == previous:
            # A server that ignores the page parameter would otherwise be read forever.
            msg = (
                f"{service.name}: the same page came back twice; check that the API supports "
                "the pagination settings"
            )
            raise FatalError(msg)
        previous = records
        paginator.update_state(response, body, records)
        yield records
        if not paginator.has_next_page:
            return
        paginator.update_request(request)


def _check_origin(url: str, base: httpx.URL, service: Service) -> None:
    """Refuse a next-page URL on another host: the credential would be sent along to it."""
    import httpx

    target = httpx.URL(url)
    if not target.is_absolute_url:
        return
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        msg = (
            f"{service.name}: refusing to follow a next-page link to {redact_url(target)}: it is "
            f"not on {base.host}, and the credential would be sent there"
        )
        raise FatalError(msg)


def _json(response: httpx.Response, service: Service) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        where = redact_url(response.request.url.copy_with(query=None))
        msg = f"{service.name} answered GET {where} with a body that is not JSON ({kind})"
        raise FatalError(msg) from None


def extract_records(body: Any, records_path: str, service: Service) -> list[dict[str, Any]]:
    """The list of objects at ``records_path`` (``""``: the body itself); ``null`` is no records."""
    found = dig(body, records_path)
    if found is None:
        return []
    where = f"records_path {records_path!r}" if records_path else "the response body"
    if not isinstance(found, list):
        hint = ""
        if isinstance(found, dict):
            lists = sorted(k for k, v in found.items() if isinstance(v, list))
            hint = f"; lists in it: {', '.join(lists)}" if lists else ""
        msg = f"{service.name}: {where} is a {type(found).__name__}, not a list{hint}"
        raise FatalError(msg)
    if not all(isinstance(item, dict) for item in found):
        msg = f"{service.name}: {where} holds values that are not objects"
        raise FatalError(msg)
    return found
