"""``mailchimp.members``: add or update audience members by address, with merge fields and tags.

A member is keyed by its subscriber hash (MD5 of the lowercased address), so writing one twice
updates it: ``PUT /lists/{id}/members/{hash}`` with ``status_if_new``, then ``POST .../tags``
when the payload has tags. Small batches go member by member on up to 10 connections (Mailchimp's
limit per key, enforced by the central client's governor). Batches over ``batch_threshold`` go
through the batch subscribe endpoint (``POST /lists/{id}``, 500 members a call), whose ``errors``
name the members it refused; members it reports as existing are upserted one by one, so
``status_if_new`` keeps meaning "only if new" (see :mod:`connectors.mailchimp.members_batch`).

Before anything is sent, a member is dead-lettered when Mailchimp would refuse it or lose part of
it: an ADDRESS with only some of its parts (:mod:`connectors.mailchimp.addresses`; one with none
is left out, so Mailchimp keeps what it holds), or a merge tag the audience does not have
(:mod:`connectors.mailchimp.audience_fields`, read once per run; ``check_merge_fields: false``
turns that off).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from connectors.mailchimp.addresses import address_parts, missing_parts
from connectors.mailchimp.audience_fields import lacking, lacking_reason, merge_tags
from connectors.mailchimp.members_batch import subscribe_all
from connectors.mailchimp.pairing import member_seen, payload_fields
from connectors.mailchimp.service import (
    MAX_CONNECTIONS,
    MailchimpRejected,
    MailchimpSettings,
    WritableStatus,
    call,
    call_on_list,
    lists_api,
    subscriber_hash,
)
from core.errors import ConnectorError, RetriableError, SkippableError
from core.outcomes import Outcome, WriteItem, WriteResult
from core.sink import Sink
from core.source import Seen

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


class MemberPayload(BaseModel):
    """One member to add or update."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email_address: str
    status_if_new: WritableStatus | None = Field(
        default=None, description="status of a new member; default: the sink's status_if_new"
    )
    status: WritableStatus | None = Field(default=None, description="changes an existing member")
    merge_fields: dict[str, Any] = Field(default_factory=dict, description="FNAME, LNAME, ...")
    tags: list[str] = Field(default_factory=list, description="tag names to add")

    @field_validator("email_address")
    @classmethod
    def _looks_like_an_address(cls, value: str) -> str:
        if not _EMAIL.match(value):
            msg = "not a valid email address"
            raise ValueError(msg)
        return value

    @field_validator("merge_fields", mode="before")
    @classmethod
    def _leave_missing_values_alone(cls, value: Any) -> Any:
        # A value the source lacks is not sent, so it never blanks what Mailchimp holds.
        if not isinstance(value, dict):
            return value
        kept: dict[str, Any] = {}
        for name, item in value.items():
            if isinstance(item, dict):
                item = address_parts(item)
            if item is not None and item != {}:
                kept[str(name).upper()] = item
        return kept

    @field_validator("merge_fields")
    @classmethod
    def _whole_addresses(cls, value: dict[str, Any]) -> dict[str, Any]:
        for tag, item in value.items():
            if isinstance(item, dict) and (missing := missing_parts(item)):
                raise PydanticCustomError(
                    "partial_address",
                    "{tag} is missing {missing}; Mailchimp refuses a partial address",
                    {"tag": tag, "missing": ", ".join(missing)},
                )
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):  # "a;b", as Virtuous and CSV exports write them
            value = value.split(";")
        if isinstance(value, list):
            names = (str(v).strip() for v in value if v is not None)
            return list(dict.fromkeys(n for n in names if n))
        return value


class MembersSinkSettings(MailchimpSettings):
    status_if_new: WritableStatus = Field(
        default="subscribed", description="status given to a member who is not in the audience yet"
    )
    batch_size: int = Field(default=100, ge=1, le=5000, description="members per runner batch")
    batch_threshold: int = Field(
        default=50,
        ge=0,
        description="batches larger than this use the batch subscribe endpoint",
    )
    check_merge_fields: bool = Field(
        default=True,
        description="dead-letter a member whose merge tags the audience lacks (read once a run)",
    )


class MembersSink(Sink):
    """Upserts members of one audience through the mailchimp-marketing SDK."""

    name: ClassVar[str] = "mailchimp.members"
    Settings: ClassVar[type[BaseModel]] = MembersSinkSettings
    Model: ClassVar[type[BaseModel] | None] = MemberPayload
    supports_update: ClassVar[bool] = True
    description: ClassVar[str] = "add or update Mailchimp audience members, with tags"
    settings: MembersSinkSettings

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        self.api = lists_api(self.settings, self.context)
        # The central client caps connections too; the pool only keeps the threads few.
        self.pool = ThreadPoolExecutor(MAX_CONNECTIONS, thread_name_prefix="mailchimp")
        self._fatal: ConnectorError | None = None
        self._lock = threading.Lock()
        self._tags: list[str] | None = None  # the audience's, read at the first write

    def close(self) -> None:
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=True, cancel_futures=True)

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        batch, refused = self._with_known_tags(batch)
        if len(batch) > self.settings.batch_threshold:
            return refused + self._write_in_bulk(batch)
        return refused + self._each(batch, self._upsert)

    def preview(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        """A member whose merge tags the audience lacks is refused, as :meth:`write` would
        (one read of the audience's fields); the others are written or updated."""
        if not hasattr(self, "api"):  # a dry run opens nothing
            self.api = lists_api(self.settings, self.context)
            self._tags = None
        kept, refused = self._with_known_tags(batch)
        return refused + super().preview(kept)

    def _with_known_tags(
        self, batch: Sequence[WriteItem]
    ) -> tuple[list[WriteItem], list[WriteResult]]:
        """The items whose merge tags the audience has, and a dead letter for each other one."""
        if not self.settings.check_merge_fields or not any(
            item.payload.get("merge_fields") for item in batch
        ):
            return list(batch), []
        if self._tags is None:
            self._tags = merge_tags(self.api, self.settings.list_id)
        kept: list[WriteItem] = []
        refused: list[WriteResult] = []
        for item in batch:
            missing = lacking(item.payload, self._tags)
            if missing:
                reason = lacking_reason(missing, self._tags)
                field = f"merge_fields.{missing[0]}"
                refused.append(WriteResult(item.key, Outcome.INVALID, reason=reason, field=field))
            else:
                kept.append(item)
        return kept, refused

    # --- two-way sync (core.two_way): the member's hash is its key in the members source -------

    def pair_fields(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        return payload_fields(payload)

    def pair_target(self, payload: Mapping[str, Any]) -> str | None:
        return subscriber_hash(str(payload.get("email_address") or ""))

    def pair_key(self, sink_key: str) -> str | None:
        return sink_key

    def pair_current(self, items: Sequence[WriteItem]) -> dict[str, Seen]:
        api = getattr(self, "api", None) or lists_api(self.settings, self.context)
        found: dict[str, Seen] = {}
        for item in items:
            target = subscriber_hash(str(item.payload["email_address"]))
            try:
                member = call(api.get_list_member, self.settings.list_id, target)
            except MailchimpRejected as error:
                if error.status == 404:
                    continue  # not in the audience: nothing to overwrite
                raise
            if isinstance(member, dict):
                found[item.key] = member_seen(member)
        return found

    # --- one member at a time -----------------------------------------------------------------

    def _upsert(self, item: WriteItem) -> WriteResult:
        payload = item.payload
        email = str(payload["email_address"])
        target = subscriber_hash(email)
        self._follow_new_address(item, target)
        body: dict[str, Any] = {
            "email_address": email,
            "status_if_new": payload.get("status_if_new") or self.settings.status_if_new,
        }
        if payload.get("status"):
            body["status"] = payload["status"]
        if payload.get("merge_fields"):
            body["merge_fields"] = payload["merge_fields"]
        call_on_list(self.settings.list_id, self.api.set_list_member, target, body)
        return self._tag(item)

    def _follow_new_address(self, item: WriteItem, target: str) -> None:
        """Move a member whose address changed in the source, instead of adding a second one."""
        old = item.previous.sink_key if item.previous is not None else None
        if not old or old == target:
            return
        # If the old member is gone or the new address is taken, the PUT writes the new one.
        with contextlib.suppress(MailchimpRejected):
            call(
                self.api.update_list_member,
                self.settings.list_id,
                old,
                {"email_address": item.payload["email_address"]},
            )

    def _tag(self, item: WriteItem) -> WriteResult:
        target = subscriber_hash(str(item.payload["email_address"]))
        tags = item.payload.get("tags") or []
        if tags:
            body = {"tags": [{"name": name, "status": "active"} for name in tags]}
            call(self.api.update_list_member_tags, self.settings.list_id, target, body)
        outcome = Outcome.UPDATED if item.is_update else Outcome.WRITTEN
        return WriteResult(item.key, outcome, sink_key=target)

    def _each(
        self, items: Sequence[WriteItem], work: Callable[[WriteItem], WriteResult]
    ) -> list[WriteResult]:
        """``work`` on every item, on the pool; a refused credential stops the rest."""
        futures = [self.pool.submit(self._guarded, work, item) for item in items]
        results = [future.result() for future in futures]
        if self._fatal is not None:
            raise self._fatal
        return [r for r in results if r is not None]

    def _guarded(
        self, work: Callable[[WriteItem], WriteResult], item: WriteItem
    ) -> WriteResult | None:
        if self._fatal is not None:
            return None  # the run is stopping: every later request would fail the same way
        try:
            return work(item)
        except SkippableError as error:
            return WriteResult(item.key, Outcome.INVALID, reason=error.message, field=error.field)
        except RetriableError as error:
            return WriteResult(item.key, Outcome.FAILED, reason=str(error))
        except ConnectorError as error:
            with self._lock:
                self._fatal = self._fatal or error
            return None

    # --- the batch endpoint -------------------------------------------------------------------

    def _write_in_bulk(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        moved = [item for item in batch if self._moved(item)]
        rest = [item for item in batch if not self._moved(item)]
        outcome = subscribe_all(self.api, self.settings.list_id, rest, self.settings.status_if_new)
        # Moved addresses are rare, and existing members keep their status only through the PUT.
        results = outcome.results + self._each(moved + outcome.existing, self._upsert)
        return results + self._each(outcome.taken, self._tag)

    def _moved(self, item: WriteItem) -> bool:
        old = item.previous.sink_key if item.previous is not None else None
        return bool(old) and old != subscriber_hash(str(item.payload["email_address"]))
