"""``http.json``: any paged JSON list endpoint, configured entirely in the recipe.

For a platform without its own connector::

    source:
      use: http.json
      with:
        service_name: Example
        base_url: https://api.example.org/v1
        path: /donations
        auth: {type: bearer, token: "${EXAMPLE_TOKEN}"}
        pagination: {type: next_url, path: links.next}
        records_path: data
        incremental: {param: updated_since, cursor_field: updated_at}

Requests go through the central client like every connector's: rate budget, retries, redaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.http.incremental import HighWaterMark, MarkedSource, cursor_field, resume_from
from connectors.http.pages import walk_pages
from connectors.http.paginators import PageRequest
from connectors.http.paths import dig
from connectors.http.settings import JsonSourceSettings
from core.http import Service
from core.source import Record, Unreadable


class JsonSource(MarkedSource):
    """Records of a JSON API, page by page, optionally only those changed since the last run."""

    name: ClassVar[str] = "http.json"
    Settings: ClassVar[type[BaseModel]] = JsonSourceSettings
    description: ClassVar[str] = "records of any paged JSON API, configured in the recipe"
    settings: JsonSourceSettings

    def service(self) -> Service:
        s = self.settings
        return Service(
            name=s.service_name,
            base_url=s.base_url,
            rate_limit=s.rate_limit.build() if s.rate_limit else None,
            timeout=s.timeout,
        )

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        s = self.settings
        service = self.service()
        client = self.context.http_client(service, s.auth.build())
        params: dict[str, Any] = dict(s.params)
        incremental = s.incremental
        mark: HighWaterMark | None = None
        if incremental is not None:
            since = resume_from(cursor, incremental.start, incremental.format, incremental.overlap)
            if since is not None:
                params[incremental.param] = since
            mark = HighWaterMark(
                lambda r: cursor_field(r, incremental.cursor_field, incremental.format),
                ordered=incremental.ordered,
            )
        request = PageRequest(s.path, params, dict(s.headers))
        pages = walk_pages(client, service, request, s.pagination.build(), s.records_path)
        yield from self.track(pages, mark)

    def key(self, record: Mapping[str, Any]) -> str:
        value = dig(record, self.settings.key_field)
        if value is None or value == "":
            raise KeyError(self.settings.key_field)  # the runner falls back to a content hash
        return str(value)
