"""``donorbox.donations``: donations since the last run, oldest first.

``GET /api/v1/donations`` answers a bare JSON array per ``page`` (``per_page`` up to 100); a
short page is the last. ``order=asc`` keeps pages stable while new donations arrive, and lets the
cursor (the UTC date of ``donation_date``) advance with every batch. ``date_from`` is a whole
day, so each run re-reads the cursor's day and ``lookback_days`` before it: that also picks up
refunds (``amount_refunded``) of recent gifts; the ledger skips what did not change.

Records are passed on as Donorbox sends them: ``amount`` is a decimal string ("100.0"),
``stripe_charge_id`` names the Stripe charge behind a card gift (PayPal donations have none),
``donor`` is nested and has no phone. Each is first checked against the documented shape the
recipes rely on (:class:`~connectors.donorbox.models.Donation`): one that breaks it is
dead-lettered naming the field, and the read goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from connectors.donorbox.models import Donation
from connectors.donorbox.service import DonorboxSettings, donorbox_client
from connectors.http.incremental import (
    HighWaterMark,
    MarkedSource,
    Start,
    cursor_field,
    resume_from,
)
from connectors.http.pages import walk_pages
from connectors.http.paginators import PageNumberPaginator, PageRequest
from core.contract import ContractCheck
from core.source import Record, Unreadable

#: Donorbox's maximum; a larger per_page falls back to 50, which would look like a short last page.
MAX_PER_PAGE = 100


class DonationSettings(DonorboxSettings):
    start: Start = Field(default=None, description="first run: donations since (YYYY-MM-DD)")
    lookback_days: int = Field(
        default=1, ge=0, description="days re-read before the last run's newest donation date"
    )
    per_page: int = Field(default=MAX_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    campaign_id: int | None = Field(default=None, description="only this campaign's donations")


class Donations(MarkedSource):
    """Donorbox donations, oldest first, from the last run's newest day on."""

    name: ClassVar[str] = "donorbox.donations"
    Settings: ClassVar[type[BaseModel]] = DonationSettings
    description: ClassVar[str] = "Donorbox donations, incremental by donation date"
    settings: DonationSettings

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        s = self.settings
        client, service = donorbox_client(s, self.context)
        params: dict[str, Any] = {"order": "asc"}
        # The date of the newest donation is re-read on purpose: date_from has no time part.
        since = resume_from(cursor, s.start, "date", timedelta(days=s.lookback_days))
        if since is not None:
            params["date_from"] = since
        if s.campaign_id is not None:
            params["campaign_id"] = s.campaign_id
        paginator = PageNumberPaginator("page", 1, "per_page", s.per_page)
        pages = walk_pages(client, service, PageRequest("/api/v1/donations", params), paginator)
        mark = HighWaterMark(lambda r: cursor_field(r, "donation_date", "date"), ordered=True)
        check = ContractCheck(Donation, "Donorbox", self.key)
        # Checked after the mark has seen them: pages are oldest first, so a broken donation's
        # date never moves the cursor past a readable one's.
        yield from check(self.track(pages, mark))
