"""``givebutter.transactions``: donations, ticket sales and other payments, changed since last run.

``GET /v1/transactions`` pages Laravel-style (``page``, ``per_page`` up to 100, follow
``links.next``). ``updatedAfter`` narrows a re-run to what changed, refunds included. The list
cannot be sorted by ``updated_at``, so the cursor (the highest ``updated_at`` seen) is committed
only once the whole read completes, and each run starts ``overlap_seconds`` before it. Records
are passed on as Givebutter sends them: amounts in major units (``25.5``), ``fee``,
``fee_covered``, ``is_recurring``, ``plan_id``, ``fund_code``, ``campaign_code``, ``refunded``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from connectors.givebutter.service import GivebutterSettings, givebutter_client
from connectors.http.incremental import (
    HighWaterMark,
    MarkedSource,
    Start,
    cursor_field,
    resume_from,
)
from connectors.http.pages import walk_pages
from connectors.http.paginators import NextUrlPaginator, PageRequest
from core.source import Record, Unreadable

MAX_PER_PAGE = 100


class TransactionSettings(GivebutterSettings):
    start: Start = Field(
        default=None, description="first run: only transactions updated since (date or ISO)"
    )
    overlap_seconds: int = Field(
        default=300, ge=0, description="each run re-reads this far before the last one's newest"
    )
    per_page: int = Field(default=MAX_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    scope: Literal["all", "benefiting", "chapters"] | None = Field(
        default=None, description="chapter accounts: whose transactions"
    )


class Transactions(MarkedSource):
    """Givebutter transactions, oldest created first, only those updated since the last run."""

    name: ClassVar[str] = "givebutter.transactions"
    Settings: ClassVar[type[BaseModel]] = TransactionSettings
    description: ClassVar[str] = "Givebutter transactions (gifts, tickets), incremental"
    settings: TransactionSettings

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        s = self.settings
        client, service = givebutter_client(s, self.context)
        # Oldest first keeps pages stable while new transactions arrive during the read.
        params: dict[str, Any] = {"per_page": s.per_page, "sortBy": "created_at"}
        since = resume_from(cursor, s.start, "iso", timedelta(seconds=s.overlap_seconds))
        if since is not None:
            params["updatedAfter"] = since
        if s.scope is not None:
            params["scope"] = s.scope
        request = PageRequest("/v1/transactions", params)
        pages = walk_pages(client, service, request, NextUrlPaginator("links.next"), "data")
        mark = HighWaterMark(lambda r: cursor_field(r, "updated_at", "iso"))
        yield from self.track(pages, mark)
