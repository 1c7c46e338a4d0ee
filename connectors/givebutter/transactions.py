"""``givebutter.transactions``: donations, ticket sales and other payments, changed since last run.

``GET /v1/transactions`` pages Laravel-style (``page``, ``per_page`` up to 100, follow
``links.next``). ``updatedAfter`` narrows a re-run to what changed, refunds included. The list
cannot be sorted by ``updated_at``, so the cursor (the highest ``updated_at`` seen) is committed
only once the whole read completes, and each run starts ``overlap_seconds`` before it.

Records are passed on in Givebutter's published shape, unchanged: amounts in major units
(``25.5``), ``fee``, ``fee_covered``, ``is_recurring``, ``plan_id``, ``fund_code``,
``campaign_code`` on the list item, and ``captured``, ``refunded``, ``refunded_at`` on its one
nested entry, which recipes read as ``record.transactions[0].refunded``. Each record is checked
against :class:`~connectors.givebutter.models.Transaction` first: one that breaks it is
dead-lettered naming the field, and the read goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from connectors.givebutter.models import Transaction
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
from core.contract import ContractCheck
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
        yield from _checked(pages, mark, self.track)


def _checked(
    pages: Iterable[list[Record]],
    mark: HighWaterMark,
    track: Callable[[Iterable[list[Record]], HighWaterMark], Iterator[Record]],
) -> Iterator[Record | Unreadable]:
    """The records of ``pages``, each checked against the contract. A broken one is passed on
    as :class:`Unreadable` beside the mark, never through it: the cursor rides on the last
    readable record, which the runner commits."""
    check = ContractCheck(Transaction, "Givebutter", lambda r: str(r["id"]))
    broken: list[Unreadable] = []

    def readable() -> Iterator[list[Record]]:
        for page in pages:
            kept = []
            for record in page:
                checked = check.check(record)
                if isinstance(checked, Unreadable):
                    broken.append(checked)
                else:
                    kept.append(checked)
            yield kept

    for record in track(readable(), mark):
        yield from broken
        broken.clear()
        yield record
    yield from broken
