"""``mailchimp.members``: the members of one audience, incremental by ``last_changed``.

Members are read oldest change first (``sort_field=last_changed``), so the cursor committed with
each batch (the highest ``last_changed`` so far) is a safe place to resume: nothing older is left
unread. A run re-reads ``overlap_seconds`` before the cursor, because Mailchimp keeps only whole
seconds and ``since_last_changed`` means "after"; the ledger recognises the repeats.

Pages are ``count``/``offset`` windows over a listing that moves while it is read: a member that
changes jumps to the end, and everyone behind it moves up one place, so a plain next offset would
skip someone. Each page therefore starts a little before the previous one ended and resumes after
the last member already read that it contains (see :func:`_unread`).

Each member is checked against :class:`MemberContract`, the fields the source and its recipes
rely on: one that breaks it (no ``email_address``, a status Mailchimp does not document) is
dead-lettered naming the field, instead of being read as empty or silently left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from connectors.mailchimp.pairing import member_seen
from connectors.mailchimp.service import (
    STATUSES,
    MailchimpSettings,
    Status,
    call_on_list,
    lists_api,
)
from core.contract import ContractCheck
from core.source import Record, Seen, Source, Unreadable

if TYPE_CHECKING:
    from mailchimp_marketing.api.lists_api import ListsApi


# Members re-read at the start of each page to find where the last one ended.
_REREAD = 20


class MemberTag(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class MemberContract(BaseModel):
    """The fields of a member (``GET /lists/{id}/members``) this source and its recipes rely on:
    the key, the address, the status it filters on, the cursor, merge fields and tags."""

    model_config = ConfigDict(extra="allow")

    id: str
    email_address: str
    status: Status
    last_changed: str
    merge_fields: dict[str, Any] = Field(default_factory=dict)
    tags: list[MemberTag] = Field(default_factory=list)


class MembersSettings(MailchimpSettings):
    statuses: list[Status] = Field(
        default_factory=lambda: list(STATUSES),
        min_length=1,
        description="the statuses to read (default: all)",
    )
    page_size: int = Field(default=500, ge=1, le=1000, description="members per request")
    overlap_seconds: int = Field(
        default=60, ge=0, description="seconds re-read before the last change already seen"
    )


class MembersSource(Source):
    """``GET /lists/{list_id}/members`` through the mailchimp-marketing SDK."""

    name: ClassVar[str] = "mailchimp.members"
    Settings: ClassVar[type[BaseModel]] = MembersSettings
    description: ClassVar[str] = "audience members from Mailchimp, incremental by last change"
    settings: MembersSettings

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        api = lists_api(self.settings, self.context)
        # Checked before the status filter, so a member whose status is not one Mailchimp
        # documents is reported, not silently left out.
        check = ContractCheck(MemberContract, "Mailchimp", self.key)
        since = self._since(cursor)
        wanted = set(self.settings.statuses)
        # Mailchimp filters on one status per request. For several, one unfiltered listing keeps
        # every member in a single last_changed order, which the cursor relies on.
        status = next(iter(wanted)) if len(wanted) == 1 else None
        listing = _listing(
            lambda offset: self._page(api, offset, since, status), self.settings.page_size
        )
        for member in check(listing):
            if isinstance(member, Unreadable) or member["status"] in wanted:
                yield member

    def _page(
        self, api: ListsApi, offset: int, since: str | None, status: str | None
    ) -> list[Record]:
        options: dict[str, Any] = {
            "count": self.settings.page_size,
            "offset": offset,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "exclude_fields": ["_links", "members._links"],
        }
        if since is not None:
            options["since_last_changed"] = since
        if status is not None:
            options["status"] = status
        page = call_on_list(self.settings.list_id, api.get_list_members_info, **options)
        return list(page.get("members") or []) if isinstance(page, dict) else []

    def _since(self, cursor: Any | None) -> str | None:
        if not cursor:
            return None
        moment = _utc(str(cursor))
        if moment is None:
            return None
        return (moment - timedelta(seconds=self.settings.overlap_seconds)).isoformat()

    def key(self, record: Mapping[str, Any]) -> str:
        return str(record["id"])

    def pair_seen(self, record: Mapping[str, Any]) -> Seen | None:
        return member_seen(record)

    def cursor_value(self, record: Mapping[str, Any]) -> Any | None:
        moment = _utc(str(record.get("last_changed") or ""))
        # One form for every value, so the runner's max() compares them as times.
        return moment.isoformat() if moment is not None else None


def _utc(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _listing(fetch: Callable[[int], list[Record]], page_size: int) -> Iterator[Record]:
    """Every member of a listing that may shift while it is paged through.

    ``fetch(offset)`` returns up to ``page_size`` members from ``offset``.
    """
    overlap = min(_REREAD, page_size // 4)
    recent: deque[str] = deque(maxlen=max(overlap, 1))  # ids of the last members read
    read = 0  # members of the listing read so far
    start = 0
    while True:
        page = fetch(start)
        unread = page if start == read or start == 0 else _unread(page, recent)
        if unread is None:
            # More members moved than the overlap covers: look a page further back.
            start = max(0, start - page_size)
            continue
        yield from unread
        recent.extend(str(m.get("id")) for m in unread)
        if len(page) < page_size:
            return
        read = start + len(page)
        start = max(0, read - overlap)


def _unread(page: Sequence[Record], recent: deque[str]) -> list[Record] | None:
    """The members after the last one already read, or None if none of ``recent`` is here."""
    seen = set(recent)
    for index in range(len(page) - 1, -1, -1):
        if str(page[index].get("id")) in seen:
            return list(page[index + 1 :])
    return None
