"""The Mailchimp emulator's memory: settings, audiences, members, and what the rules refuse.

Everything here is plain Python with no HTTP: :mod:`connectors.mailchimp.emulator.app` turns
requests into calls on :class:`EmulatorState` and a :class:`Refusal` into a problem+json answer.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from connectors.mailchimp.emulator.merge_fields import (
    INVALID,
    MergeField,
    UnknownTags,
    check,
    default_fields,
    stored,
)
from core.emulation import Faults, WebhookDeliverer
from core.emulation.listings import Listings

if TYPE_CHECKING:
    from connectors.mailchimp.emulator.webhooks import ListWebhook

WRITABLE = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
STATUSES = WRITABLE | {"archived"}
# A contact who unsubscribed or bounced may only come back by signing up again themselves.
COMPLIANCE = frozenset({"unsubscribed", "cleaned"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


class EmulatorSettings(BaseModel):
    """How the emulated Mailchimp behaves."""

    api_keys: list[str] = Field(default_factory=lambda: ["emulator-key-us1"])
    lists: dict[str, str] = Field(
        default_factory=lambda: {"emulator-list": "Emulated Audience"},
        description="audience id -> name",
    )
    max_connections: int = Field(default=10, ge=1, description="simultaneous requests per key")
    batch_max_members: int = 500
    count_max: int = 1000
    fake_domains: list[str] = Field(
        default_factory=lambda: ["example.com", "test.com"],
        description="domains Mailchimp refuses as fake (it refuses example.com)",
    )
    merge_fields: dict[str, list[MergeField]] = Field(
        default_factory=dict,
        description="audience id -> its merge fields; an audience not named has a new one's",
    )
    address_country_required: bool = Field(
        default=False,
        description="refuse an ADDRESS without a country (unsettled: see merge_fields.py)",
    )
    unknown_merge_fields: UnknownTags = Field(
        default="ignored",
        description="what a tag the audience does not define gets (undocumented: a switch)",
    )
    # Mailchimp retries "at increasing intervals over ~75 minutes" and waits 10 s for an answer.
    webhook_retry_delays: tuple[float, ...] = (60.0, 300.0, 900.0, 3000.0)
    webhook_delay_scale: float = Field(default=1.0, ge=0, description="tests run it in ms")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    validate_webhook_urls: bool = Field(
        default=True, description="GET a new webhook's URL and refuse it unless it answers 200"
    )
    faults: Faults = Field(default_factory=Faults)


class Refusal(Exception):
    """A request the rules refuse: becomes a problem+json answer."""

    def __init__(
        self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def iso(moment: datetime) -> str:
    """Mailchimp's timestamps: ``2015-10-21T15:41:36+00:00``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise Refusal(400, "Invalid Resource", f"{name} must be an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Member:
    email: str
    status: str
    web_id: int
    created: datetime
    last_changed: datetime
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    source: str = "API - Generic"
    #: Changes to any member's fields, counted: a member list kept since is out of date (a
    #: change of status or last_changed moves members in or out of a listing, or along it).
    edits: ClassVar[int] = 0

    def __setattr__(self, name: str, value: Any) -> None:
        Member.edits += 1
        super().__setattr__(name, value)

    @property
    def id(self) -> str:
        return subscriber_hash(self.email)


@dataclass
class EmulatorState:
    settings: EmulatorSettings
    faults: Faults = field(init=False)
    api_keys: set[str] = field(init=False)
    lists: dict[str, str] = field(init=False)
    merge_fields: dict[str, list[MergeField]] = field(init=False)
    members: dict[str, dict[str, Member]] = field(init=False)
    tag_ids: dict[str, int] = field(init=False)
    in_flight: dict[str, int] = field(init=False)
    max_in_flight: int = 0
    rejected_connections: int = 0
    requests: list[dict[str, str]] = field(init=False)
    clock_offset: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self.faults = self.settings.faults.model_copy(deep=True)
        self.deliverer = WebhookDeliverer(
            "Mailchimp",
            delays=self.settings.webhook_retry_delays,
            scale=self.settings.webhook_delay_scale,
            timeout=self.settings.webhook_timeout_seconds,
        )
        self.reset()

    def reset(self) -> None:
        # In place: the fault middleware holds this object.
        self.faults.clear()
        self.faults.update(**self.settings.faults.model_dump())
        self.api_keys = set(self.settings.api_keys)
        self.lists = {}
        self.merge_fields = {}
        self.members = {}
        #: Member lists kept between their pages (``offset``) while no member changes.
        self.listings = Listings()
        for list_id, name in self.settings.lists.items():
            self.add_list(list_id, name, self.settings.merge_fields.get(list_id))
        self.tag_ids = {}
        self.in_flight = defaultdict(int)
        self.max_in_flight = 0
        self.rejected_connections = 0
        self.requests = []
        self._web_ids = itertools.count(1001)
        self.webhooks: dict[str, dict[str, ListWebhook]] = {}  # audience -> id -> webhook
        self.webhook_ids = itertools.count(0x5A17E0001)
        self.deliverer.clear()

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self.clock_offset

    def add_list(self, list_id: str, name: str, fields: list[MergeField] | None = None) -> None:
        """A new audience (or a new name and, if given, new merge fields for a known one)."""
        self.lists[list_id] = name
        self.members.setdefault(list_id, {})
        if fields is not None:
            self.merge_fields[list_id] = [f.model_copy() for f in fields]
        else:
            self.merge_fields.setdefault(list_id, default_fields())

    # --- lookups ------------------------------------------------------------------------------

    def audience(self, list_id: str) -> dict[str, Member]:
        if list_id not in self.lists:
            raise Refusal(404, "Resource Not Found", "The requested resource could not be found.")
        return self.members[list_id]

    def member(self, list_id: str, hash_or_email: str) -> Member:
        found = self.audience(list_id).get(hash_of(hash_or_email))
        if found is None:
            raise Refusal(404, "Resource Not Found", "The requested resource could not be found.")
        return found

    def tag_id(self, name: str) -> int:
        return self.tag_ids.setdefault(name, 1000 + len(self.tag_ids))

    # --- rules --------------------------------------------------------------------------------

    def check_email(self, email: Any) -> str:
        if not isinstance(email, str) or not email.strip():
            raise Refusal(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated. For field-specific details, see "
                "the 'errors' array.",
                [{"field": "email_address", "message": "This value should not be blank."}],
            )
        address = str(email).strip()
        domain = address.rpartition("@")[2].lower()
        if not _EMAIL.match(address) or domain in self.settings.fake_domains:
            raise Refusal(
                400,
                "Invalid Resource",
                f"{address} looks fake or invalid, please enter a real email address.",
            )
        return address

    def check_status(self, status: Any, name: str) -> str:
        if status not in WRITABLE:
            raise Refusal(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated. For field-specific details, see "
                "the 'errors' array.",
                [
                    {
                        "field": name,
                        "message": f"Value must be one of: {', '.join(sorted(WRITABLE))}",
                    }
                ],
            )
        return str(status)

    def checked_merge_fields(
        self, list_id: str, body: dict[str, Any], held: dict[str, Any], *, skip_required: bool
    ) -> dict[str, Any]:
        """The body's merge fields as they will be kept, or a refusal naming each bad one."""
        fields = self.merge_fields[list_id]
        given = _merge_fields(body)
        errors = check(
            fields,
            given,
            held,
            skip_required=skip_required,
            country_required=self.settings.address_country_required,
            unknown=self.settings.unknown_merge_fields,
        )
        if errors:
            raise Refusal(400, "Invalid Resource", INVALID, errors)
        return stored(fields, given)

    def change_status(self, member: Member, status: str, *, refuse: bool) -> None:
        """Set ``status``, unless the member is in a compliance state and would be subscribed."""
        if member.status in COMPLIANCE and status in {"subscribed", "pending"}:
            if refuse:
                raise Refusal(
                    400,
                    "Member In Compliance State",
                    f"{member.email} is already a list member in compliance state due to "
                    "unsubscribe, bounce, or compliance review and cannot be subscribed.",
                )
            return  # the batch endpoint leaves them alone without a word
        member.status = status

    # --- writes -------------------------------------------------------------------------------

    def create(
        self,
        list_id: str,
        email: str,
        status: str,
        merge_fields: dict[str, Any],
        tags: list[str] | None = None,
        last_changed: datetime | None = None,
    ) -> Member:
        moment = last_changed or self.now()
        member = Member(email, status, next(self._web_ids), moment, moment)
        member.merge_fields.update(merge_fields)
        member.tags = list(dict.fromkeys(tags or []))
        for name in member.tags:
            self.tag_id(name)
        self.audience(list_id)[member.id] = member
        return member

    def upsert(
        self,
        list_id: str,
        hash_or_email: str,
        body: dict[str, Any],
        *,
        skip_merge_validation: bool = False,
    ) -> Member:
        """``PUT /lists/{id}/members/{hash}``."""
        audience = self.audience(list_id)
        email = self.check_email(body.get("email_address"))
        if subscriber_hash(email) != hash_of(hash_or_email):
            raise Refusal(
                400,
                "Invalid Resource",
                "The email address in the request body does not match the subscriber hash.",
            )
        member = audience.get(subscriber_hash(email))
        held = member.merge_fields if member is not None else {}
        merge_fields = self.checked_merge_fields(
            list_id, body, held, skip_required=skip_merge_validation
        )
        if member is None or member.status == "archived":
            status = body.get("status") or body.get("status_if_new")
            name = "status" if body.get("status") else "status_if_new"
            status = self.check_status(status, name)
            if member is None:
                return self.create(list_id, email, status, merge_fields)
            member.status = status
        elif body.get("status"):
            self.change_status(member, self.check_status(body["status"], "status"), refuse=True)
        member.merge_fields.update(merge_fields)
        member.last_changed = self.now()
        return member

    def update(
        self,
        list_id: str,
        hash_or_email: str,
        body: dict[str, Any],
        *,
        skip_merge_validation: bool = False,
    ) -> Member:
        """``PATCH /lists/{id}/members/{hash}``: may change the address too."""
        member = self.member(list_id, hash_or_email)
        audience = self.members[list_id]
        merge_fields = self.checked_merge_fields(
            list_id, body, member.merge_fields, skip_required=skip_merge_validation
        )
        new_email = body.get("email_address")
        if new_email is not None and subscriber_hash(str(new_email)) != member.id:
            new_email = self.check_email(new_email)
            if subscriber_hash(new_email) in audience:
                raise Refusal(
                    400,
                    "Member Exists",
                    f"{new_email} is already a list member. Use PUT to insert or update list "
                    "members.",
                )
            del audience[member.id]
            member.email = new_email
            audience[member.id] = member
        if body.get("status"):
            self.change_status(member, self.check_status(body["status"], "status"), refuse=True)
        member.merge_fields.update(merge_fields)
        member.last_changed = self.now()
        return member

    def archive(self, list_id: str, hash_or_email: str) -> None:
        member = self.member(list_id, hash_or_email)
        member.status = "archived"
        member.last_changed = self.now()

    def set_tags(self, list_id: str, hash_or_email: str, tags: Any) -> None:
        member = self.member(list_id, hash_or_email)
        if not isinstance(tags, list):
            raise Refusal(400, "Invalid Resource", "tags must be a list")
        for tag in tags:
            name = str(tag.get("name") or "").strip() if isinstance(tag, dict) else ""
            if not name:
                raise Refusal(400, "Invalid Resource", "every tag needs a name")
            if tag.get("status", "active") == "inactive":
                member.tags = [t for t in member.tags if t != name]
            elif name not in member.tags:
                member.tags.append(name)
                self.tag_id(name)
        member.last_changed = self.now()

    def batch(
        self, list_id: str, body: dict[str, Any], *, skip_merge_validation: bool = False
    ) -> dict[str, Any]:
        """``POST /lists/{id}``: up to 500 members; a bad member is an entry of ``errors``."""
        audience = self.audience(list_id)
        members = body.get("members")
        if not isinstance(members, list) or len(members) > self.settings.batch_max_members:
            raise Refusal(
                400,
                "Invalid Resource",
                f"members must be a list of at most {self.settings.batch_max_members}",
            )
        created: list[Member] = []
        updated: list[Member] = []
        errors: list[dict[str, str]] = []
        for entry in members:
            address = str(entry.get("email_address") or "") if isinstance(entry, dict) else ""
            try:
                email = self.check_email(address)
                existing = audience.get(subscriber_hash(email))
                if existing is not None and existing.status != "archived":
                    if not body.get("update_existing"):
                        raise Refusal(
                            400,
                            "Member Exists",
                            f"{email} is already a list member. Use PUT to insert or update list "
                            "members.",
                        )
                    merge_fields = self.checked_merge_fields(
                        list_id, entry, existing.merge_fields, skip_required=skip_merge_validation
                    )
                    if entry.get("status"):
                        status = self.check_status(entry["status"], "status")
                        self.change_status(existing, status, refuse=False)
                    existing.merge_fields.update(merge_fields)
                    existing.last_changed = self.now()
                    updated.append(existing)
                else:
                    merge_fields = self.checked_merge_fields(
                        list_id, entry, {}, skip_required=skip_merge_validation
                    )
                    status = self.check_status(entry.get("status"), "status")
                    created.append(self.create(list_id, email, status, merge_fields))
            except Refusal as refusal:
                errors.append(_batch_error(address, refusal))
        return {"created": created, "updated": updated, "errors": errors}


def _batch_error(address: str, refusal: Refusal) -> dict[str, str]:
    """A member the batch endpoint refused, as its ``errors`` array shows it: the first field a
    validation names goes in ``field``/``field_message`` (the 3.0.55 specification's shape)."""
    exists = refusal.title == "Member Exists"
    error = {
        "email_address": address,
        "error": refusal.detail,
        "error_code": "ERROR_CONTACT_EXISTS" if exists else "ERROR_GENERIC",
    }
    if refusal.errors:
        error["field"] = refusal.errors[0]["field"]
        error["field_message"] = refusal.errors[0]["message"]
    return error


def hash_of(hash_or_email: str) -> str:
    """The API accepts the address itself wherever it takes a subscriber hash."""
    return subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()


def _merge_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = body.get("merge_fields") or {}
    if not isinstance(fields, dict):
        raise Refusal(400, "Invalid Resource", "merge_fields must be an object")
    return {str(k).upper(): v for k, v in fields.items()}
