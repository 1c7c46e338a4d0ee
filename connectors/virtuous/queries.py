"""``virtuous.gifts`` and ``virtuous.contacts``: full records out of Virtuous's query endpoints.

Pages are keyset-paged by ascending id (``Id GreaterThan <last>``), never by deep ``skip``.
With a cursor, only records modified since the last run (less an overlap, because the filter
has date granularity and works in the organization's time zone) are read; the repeats at the
edge are recognised by the ledger. Records arrive in id order, not modification order, so the
cursor (the latest modification seen, in Virtuous's own clock) is committed only once the read
has finished: an interrupted run loses nothing. A page that times out is asked for again,
smaller.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from connectors.virtuous.pairing import contact_seen
from connectors.virtuous.service import VirtuousSettings, virtuous_client
from core.errors import FatalError, RetriableError
from core.http import IDEMPOTENT, RETRY_TIMEOUTS, Service
from core.source import Record, Seen, Source

if TYPE_CHECKING:
    import httpx

_SMALLER = (1000, 500, 250, 100, 50, 10, 1)
# A query is a read sent as a POST: safe to repeat after a 5xx or a dropped connection. A page
# that times out is not asked for again at the same size; _page asks for a smaller one at once.
_READ = {IDEMPOTENT: True, RETRY_TIMEOUTS: False}


class QuerySettings(VirtuousSettings):
    page_size: int = Field(default=500, ge=1, le=1000, description="records per request")
    overlap_days: int = Field(
        default=1, ge=0, description="days re-read before the last run, since the filter is by date"
    )
    start: date | None = Field(default=None, description="first run: only records modified since")


class _Query(Source):
    """One query endpoint. Subclasses say which, and which id parameter to page by."""

    path: ClassVar[str]
    id_parameter: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = QuerySettings
    settings: QuerySettings

    def read(self, cursor: Any | None) -> Iterator[Record]:
        self._latest: str | None = str(cursor) if cursor else None
        self._finished = False
        client, service = virtuous_client(self.settings, self.context)
        since = self._since(cursor)
        last_id, take = 0, self.settings.page_size
        while True:
            page, total, take = self._page(client, service, since, last_id, take)
            if last_id == 0:
                self.total = total  # what matched in all: the first page counts it whole
            for record in page:
                modified = record.get("modifiedDateTimeUtc")
                if modified and (self._latest is None or str(modified) > self._latest):
                    self._latest = str(modified)
                yield record
            # A short page is not the last one when the server caps the take below ours (the
            # reference gives both 1000 and 500 as the maximum): ``total`` counts what matched.
            if not page or (total is not None and len(page) >= total):
                break
            last_id = int(page[-1]["id"])
        self._finished = True

    def end_cursor(self) -> Any | None:
        return self._latest if getattr(self, "_finished", False) else None

    def _since(self, cursor: Any | None) -> date | None:
        if cursor:
            return datetime.fromisoformat(str(cursor)).date() - timedelta(
                days=self.settings.overlap_days
            )
        return self.settings.start

    def _page(
        self, client: httpx.Client, service: Service, since: date | None, last_id: int, take: int
    ) -> tuple[list[Record], int | None, int]:
        """One page after ``last_id``, the number of records the query matched (``None`` if the
        answer does not say), and the take it was got with."""
        import httpx  # with the client: `validate` and `plugins` never reach here

        from core.http import raise_for_status

        conditions = [
            {"parameter": self.id_parameter, "operator": "GreaterThan", "value": str(last_id)}
        ]
        if since is not None:
            conditions.append(
                {
                    "parameter": "Last Modified Date",
                    "operator": "OnOrAfter",
                    "value": since.isoformat(),
                }
            )
        body = {
            "groups": [{"conditions": conditions}],
            "sortBy": self.id_parameter,
            "descending": False,
        }
        while True:
            try:
                response = client.post(
                    self.path, params={"skip": 0, "take": take}, json=body, extensions=_READ
                )
                raise_for_status(response, service)
            except (RetriableError, httpx.TimeoutException) as error:
                if isinstance(error, RetriableError) and error.status == 429:
                    raise  # throttled for longer than the client waits: smaller pages won't help
                smaller = next((size for size in _SMALLER if size < take), None)
                if smaller is None:
                    msg = f"Virtuous keeps failing on {self.path}, even for one record: {error}"
                    raise FatalError(msg) from error
                take = smaller
                self.context.on_wait(f"Virtuous is slow; asking for {take} records per page")
                continue
            listing = response.json()
            total = listing.get("total")
            matched = total if isinstance(total, int) and not isinstance(total, bool) else None
            return list(listing.get("list") or []), matched, take

    def key(self, record: Mapping[str, Any]) -> str:
        return str(record["id"])


class ProjectQuery(_Query):
    """Every project, keyset-paged by id like the gift and contact queries (for the designation
    check of :mod:`connectors.virtuous.designations`; not a recipe's source)."""

    name: ClassVar[str] = "virtuous.projects"
    path: ClassVar[str] = "/api/Project/Query"
    id_parameter: ClassVar[str] = "Project Id"


class VirtuousGifts(_Query):
    """Full gifts (``POST /api/Gift/Query/FullGift``)."""

    name: ClassVar[str] = "virtuous.gifts"
    description: ClassVar[str] = "full gifts from Virtuous, incremental by modification date"
    path: ClassVar[str] = "/api/Gift/Query/FullGift"
    id_parameter: ClassVar[str] = "Gift Id"


class VirtuousContacts(_Query):
    """Full contacts (``POST /api/Contact/Query/FullContact``)."""

    name: ClassVar[str] = "virtuous.contacts"
    description: ClassVar[str] = "full contacts from Virtuous, incremental by modification date"
    path: ClassVar[str] = "/api/Contact/Query/FullContact"
    id_parameter: ClassVar[str] = "Contact Id"

    def pair_seen(self, record: Mapping[str, Any]) -> Seen | None:
        return contact_seen(record)
