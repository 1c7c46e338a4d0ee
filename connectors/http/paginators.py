"""Paginators: how a paged read asks for its next page, in the four steps dlt uses.

A paginator only edits a :class:`PageRequest`; :func:`connectors.http.pages.walk_pages` sends it::

    paginator.init_request(request)            # before the first request
    # ... send, parse ...
    paginator.update_state(response, body, records)
    if paginator.has_next_page:
        paginator.update_request(request)      # and send again

One class per style: page numbers, offsets, a cursor in the body, a ``Link`` header, a next URL in
the body. They are plain objects, so tests drive them with hand-built ``httpx.Response`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from connectors.http.paths import dig
from core.errors import FatalError

if TYPE_CHECKING:  # they read responses: `validate` builds none
    import httpx


@dataclass
class PageRequest:
    """The next request of a paged read: a path (joined to the base URL) or an absolute URL."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class Paginator(Protocol):
    """What :func:`~connectors.http.pages.walk_pages` needs from a pagination style."""

    @property
    def has_next_page(self) -> bool:
        """Whether another request should follow the last one."""
        ...

    def init_request(self, request: PageRequest) -> None:
        """Set up the first request (e.g. ``page=1``)."""

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        """Learn from a page: where the next one is, or that there is none."""

    def update_request(self, request: PageRequest) -> None:
        """Turn ``request`` into the request for the next page."""


class SinglePage:
    """No pagination: one request answers everything."""

    has_next_page = False

    def init_request(self, request: PageRequest) -> None:
        pass

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        pass

    def update_request(self, request: PageRequest) -> None:
        pass


def _whole(value: Any) -> int | None:
    """A page count or total from a body: ints and numeric text; anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class PageNumberPaginator:
    """``?page=1``, ``?page=2``... until a page is empty, shorter than ``size``, or the last one.

    ``size`` must not exceed the API's own maximum: a server that caps it returns what looks like a
    short page, and the read would stop early. ``total_pages_path`` names the page count in the
    body (``meta.last_page``) when the API gives one.
    """

    def __init__(
        self,
        param: str = "page",
        start: int = 1,
        size_param: str | None = None,
        size: int | None = None,
        total_pages_path: str | None = None,
    ) -> None:
        self.param = param
        self.page = start
        self.size_param = size_param
        self.size = size
        self.total_pages_path = total_pages_path
        self.has_next_page = True

    def init_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page
        if self.size_param and self.size:
            request.params[self.size_param] = self.size

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        total = _whole(dig(body, self.total_pages_path)) if self.total_pages_path else None
        short = self.size is not None and len(records) < self.size
        last = total is not None and self.page >= total
        self.has_next_page = bool(records) and not short and not last

    def update_request(self, request: PageRequest) -> None:
        self.page += 1
        request.params[self.param] = self.page


class OffsetPaginator:
    """``?offset=0&limit=100``, then ``offset=100``... until a short page or ``total`` is reached.

    The offset advances by the records actually returned, so a server that sends fewer than
    asked skips nothing.
    """

    def __init__(
        self,
        param: str = "offset",
        limit_param: str = "limit",
        limit: int = 100,
        start: int = 0,
        total_path: str | None = None,
    ) -> None:
        self.param = param
        self.limit_param = limit_param
        self.limit = limit
        self.offset = start
        self.total_path = total_path
        self.has_next_page = True

    def init_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.offset
        request.params[self.limit_param] = self.limit

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        self.offset += len(records)
        total = _whole(dig(body, self.total_path)) if self.total_path else None
        if total is not None:
            self.has_next_page = bool(records) and self.offset < total
        else:
            self.has_next_page = len(records) >= self.limit

    def update_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.offset


class CursorPaginator:
    """A cursor in the body (``meta.next_cursor``) sent back as ``?cursor=...``; stops when absent.

    A cursor that comes back unchanged would loop forever, so it stops the run instead.
    """

    def __init__(self, cursor_path: str, param: str = "cursor") -> None:
        self.cursor_path = cursor_path
        self.param = param
        self.cursor: Any = None
        self.has_next_page = True

    def init_request(self, request: PageRequest) -> None:
        pass

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        cursor = dig(body, self.cursor_path)
        if cursor in (None, "") or not records:
            self.has_next_page = False
            return
        if cursor == self.cursor:
            msg = (
                f"pagination does not advance: the cursor at {self.cursor_path!r} came back "
                "unchanged; check cursor_path"
            )
            raise FatalError(msg)
        self.cursor = cursor
        self.has_next_page = True

    def update_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.cursor


class _NextUrlBase:
    """Follows absolute or relative next-page URLs given by the server.

    Query parameters of the first request that the next URL leaves out are sent again: a Laravel
    ``links.next`` carries only ``?page=2`` unless the API appends the rest, and dropping the
    filters (``updatedAfter``) or the page size there would silently change what is read.
    """

    def __init__(self) -> None:
        self.next_url: httpx.URL | None = None
        self.has_next_page = True
        self._first_params: dict[str, Any] = {}
        self._seen: set[str] = set()

    def init_request(self, request: PageRequest) -> None:
        self._first_params = dict(request.params)

    def _found(self, response: httpx.Response, reference: Any) -> None:
        if not isinstance(reference, str) or not reference.strip():
            self.next_url, self.has_next_page = None, False
            return
        url = response.request.url.join(reference.strip())
        if str(url) in self._seen:
            msg = f"pagination does not advance: the next page is {url.copy_with(query=None)} again"
            raise FatalError(msg)
        self._seen.add(str(url))
        self.next_url, self.has_next_page = url, True

    def update_request(self, request: PageRequest) -> None:
        assert self.next_url is not None
        given = set(self.next_url.params.keys())
        request.url = str(self.next_url)
        request.params = {k: v for k, v in self._first_params.items() if k not in given}


class LinkHeaderPaginator(_NextUrlBase):
    """The ``Link: <...>; rel="next"`` response header (RFC 8288), as GitHub and others send."""

    def __init__(self, rel: str = "next") -> None:
        super().__init__()
        self.rel = rel

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        self._found(response, response.links.get(self.rel, {}).get("url"))


class NextUrlPaginator(_NextUrlBase):
    """A next-page URL in the body, e.g. ``links.next`` (Laravel) or ``next`` (Django REST)."""

    def __init__(self, next_url_path: str = "next") -> None:
        super().__init__()
        self.next_url_path = next_url_path

    def update_state(self, response: httpx.Response, body: Any, records: list[Any]) -> None:
        self._found(response, dig(body, self.next_url_path))
