"""The Virtuous emulator's memory: records, ids, the clock, and everything tests inspect.

Records are plain dataclasses in snake_case; :mod:`.shapes` renders them as the API's JSON.
Ids come from one counter per kind, each starting in its own range so that a gift id passed where
a contact id belongs fails loudly instead of finding the wrong record.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.virtuous.emulator.settings import ApiKey, EmulatorSettings, User
from connectors.virtuous.emulator.tables import Table
from core.emulation import WebhookDeliverer

if TYPE_CHECKING:
    from connectors.virtuous.emulator.webhooks import Webhook

Payload = dict[str, Any]
"""A request body with every key lower-cased (ASP.NET binds keys case-insensitively)."""


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass(kw_only=True)
class Record:
    """What every stored record has."""

    id: int
    created: datetime
    modified: datetime


@dataclass(kw_only=True)
class ContactMethod(Record):
    """An email address or phone number of one individual."""

    type: str
    value: str
    is_opted_in: bool = False
    is_primary: bool = False


@dataclass(kw_only=True)
class Individual(Record):
    """A person in a contact (household members, an organization's people)."""

    contact_id: int
    prefix: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    suffix: str | None = None
    nickname: str | None = None
    gender: str | None = None
    birth_month: int | None = None
    birth_day: int | None = None
    birth_year: int | None = None
    approximate_age: int | None = None
    is_primary: bool = False
    is_secondary: bool = False
    is_deceased: bool = False
    passion: str | None = None
    methods: list[ContactMethod] = field(default_factory=list)
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Address(Record):
    """A postal address of a contact; one of them is primary."""

    contact_id: int
    label: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    postal: str | None = None
    country: str | None = None
    is_primary: bool = False
    start_month: int | None = None
    start_day: int | None = None
    end_month: int | None = None
    end_day: int | None = None


@dataclass(kw_only=True)
class Contact(Record):
    """A household, organization or foundation."""

    contact_type: str = "Household"
    name: str = ""
    informal_name: str | None = None
    description: str | None = None
    website: str | None = None
    marital_status: str | None = None
    anniversary_month: int | None = None
    anniversary_day: int | None = None
    anniversary_year: int | None = None
    is_private: bool = False
    is_archived: bool = False
    origin_segment: str | None = None
    references: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    email_lists: list[str] = field(default_factory=list)
    organization_groups: list[str] = field(default_factory=list)
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Project(Record):
    """A designation target (fund, program)."""

    name: str
    code: str
    external_accounting_code: str | None = None
    online_display_name: str | None = None
    description: str | None = None
    type: str | None = None
    location: str | None = None
    parent_id: int | None = None
    is_active: bool = True
    is_public: bool = True
    is_available_online: bool = True
    is_tax_deductible: bool = True
    start_date: date | None = None
    end_date: date | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Designation:
    """The part of a gift that goes to one project."""

    id: int
    project_id: int
    amount: Decimal


@dataclass(kw_only=True)
class Gift(Record):
    """A created gift (never a pending transaction)."""

    contact_id: int
    gift_type: str
    gift_date: date
    amount: Decimal
    transaction_source: str | None = None
    transaction_id: str | None = None
    contact_individual_id: int | None = None
    currency_code: str = "USD"
    exchange_rate: Decimal = Decimal(1)
    batch: str | None = None
    notes: str | None = None
    segment_code: str | None = None
    media_outlet: str | None = None
    receipt_date: date | None = None
    check_number: str | None = None
    credit_card_type: str | None = None
    cash_accounting_code: str | None = None
    tribute: str | None = None
    tribute_type: str | None = None
    is_private: bool = False
    is_tax_deductible: bool = True
    passthrough_contact_id: int | None = None
    reversed_gift_id: int | None = None
    recurring_gift_id: int | None = None
    designations: list[Designation] = field(default_factory=list)
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class RecurringGift(Record):
    """A recurring schedule that gift payments are linked to."""

    contact_id: int
    amount: Decimal
    frequency: str
    start_date: date
    transaction_source: str | None = None
    transaction_id: str | None = None
    status: str = "UpToDate"
    payment_gift_ids: list[int] = field(default_factory=list)


@dataclass(kw_only=True)
class Pending:
    """A transaction waiting in the holding area for the nightly import."""

    id: int
    kind: str  # "gift" or "contact"
    payload: Payload
    org: str | None
    received: datetime
    transaction_source: str | None = None
    transaction_id: str | None = None
    import_name: str | None = None
    reason: str | None = None  # set when the import could not place it ("needs update")
    problem: str | None = None  # accepted with missing or bad values (lenient validation)


@dataclass
class Token:
    """An access or refresh token issued by ``/Token``."""

    user: str
    org: str
    permissions: frozenset[str] | None
    expires: datetime


@dataclass
class RequestLogEntry:
    """One request as the emulator saw it; credentials and bodies of ``/Token`` are left out."""

    time: datetime
    method: str
    path: str
    query: str
    status: int | None = None  # None when the connection was dropped
    org: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


_ID_BASES = {
    "contact": 1001,
    "individual": 5001,
    "address": 7001,
    "method": 9001,
    "project": 101,
    "gift": 100001,
    "designation": 300001,
    "recurring": 50001,
    "pending": 1,
    "webhook": 1,
}


class EmulatorState:
    """Everything the emulator remembers. Tests read these attributes directly."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        self.faults = self.settings.faults
        self._initial_faults = self.faults.model_dump()
        self.clock: Callable[[], datetime] = self.settings.clock or utc_now
        self.deliverer = WebhookDeliverer(
            "Virtuous",
            delays=self.settings.webhook_retry_delays,
            scale=self.settings.webhook_delay_scale,
            timeout=self.settings.webhook_timeout_seconds,
        )
        self.reset()

    def reset(self) -> None:
        """Forget every record, token, counter, log entry, fault and clock advance."""
        self.faults.update(**self._initial_faults)
        self.clock_offset = timedelta()
        self.contacts: dict[int, Contact] = {}
        self.individuals: Table[Individual] = Table(contact=_contact_id)
        self.addresses: Table[Address] = Table(contact=_contact_id)
        self.projects: dict[int, Project] = {}
        self.gifts: Table[Gift] = Table(
            contact=_contact_id, transaction=_gift_transaction, reverses=_reversed_gift
        )
        self.recurring_gifts: dict[int, RecurringGift] = {}
        self._contact_by_reference: dict[tuple[str, str], int] = {}
        self._contacts_by_email: dict[str, set[int]] = {}
        # Every gift transaction ever held (pending, imported or set aside): kept as they are
        # parked, so a batch is checked for repeats without a pass over everything held.
        self.held_transactions: set[tuple[str, str]] = set()
        self.pending: list[Pending] = []
        self.needs_update: list[Pending] = []
        self.imported: list[Pending] = []
        self.outbox: list[dict[str, Any]] = []
        self.webhooks: dict[int, Webhook] = {}  # subscriptions
        self.deliverer.clear()
        self.requests: list[RequestLogEntry] = []
        self.request_counts: Counter[str] = Counter()
        self.rate_windows: dict[str, tuple[float, int]] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        # Seeded at run time, on top of the settings' (which reset() keeps).
        self.api_keys: dict[str, ApiKey] = dict(self.settings.api_keys)
        self.users: dict[str, User] = {u.email.lower(): u for u in self.settings.users}
        self._ids = {kind: itertools.count(base) for kind, base in _ID_BASES.items()}
        self._floor = dict(_ID_BASES)

    # --- time and ids ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The emulator's current time (UTC), after any ``/_emulator/clock`` advance."""
        return self.clock() + self.clock_offset

    def next_id(self, kind: str, wanted: int | None = None) -> int:
        """A fresh id, or ``wanted`` (a seeded id) after moving the counter past it."""
        if wanted is None:
            return next(self._ids[kind])
        if wanted >= self._floor[kind]:
            self._floor[kind] = wanted + 1
            self._ids[kind] = itertools.count(wanted + 1)
        return wanted

    def stamp(self) -> dict[str, Any]:
        """Fresh ``created``/``modified`` keyword arguments for a new record."""
        now = self.now()
        return {"created": now, "modified": now}

    def touch(self, *records: Record) -> None:
        """Mark records as modified now, so ``Last Modified Date`` queries see them."""
        now = self.now()
        for record in records:
            record.modified = now

    # --- lookups -----------------------------------------------------------------------------

    def individuals_of(self, contact_id: int) -> list[Individual]:
        """The contact's individuals, primary first."""
        found = self.individuals.by("contact", contact_id)
        return sorted(found, key=lambda i: (not i.is_primary, i.id))

    def addresses_of(self, contact_id: int) -> list[Address]:
        """The contact's addresses, primary first."""
        found = self.addresses.by("contact", contact_id)
        return sorted(found, key=lambda a: (not a.is_primary, a.id))

    def primary_address(self, contact_id: int) -> Address | None:
        """The primary address (or the first one)."""
        return next(iter(self.addresses_of(contact_id)), None)

    def methods_of(self, contact_id: int) -> Iterator[ContactMethod]:
        """Every contact method of every individual of the contact."""
        for individual in self.individuals_of(contact_id):
            yield from individual.methods

    def emails_of(self, contact_id: int) -> list[str]:
        """The contact's email addresses."""
        return [m.value for m in self.methods_of(contact_id) if "email" in m.type.lower()]

    def contact_by_reference(self, source: str, reference_id: str) -> Contact | None:
        """Match on an external reference; the source is compared case-insensitively."""
        contact = self.contacts.get(
            self._contact_by_reference.get(_reference(source, reference_id), 0)
        )
        if contact is None:
            return None
        wanted = _reference(source, reference_id)
        held = any(_reference(s, r) == wanted for s, r in contact.references)
        return contact if held else None  # (it cannot have lost it: nothing removes one)

    def add_reference(self, contact: Contact, source: str, reference_id: str) -> None:
        """Give ``contact`` an external reference, findable by :meth:`contact_by_reference`."""
        contact.references.append((source, reference_id))
        self._contact_by_reference.setdefault(_reference(source, reference_id), contact.id)

    def contact_by_email(self, email: str) -> Contact | None:
        """The oldest contact with this email address (case-insensitive)."""
        wanted = email.strip().lower()
        for contact_id in sorted(self._contacts_by_email.get(wanted, ())):
            contact = self.contacts.get(contact_id)
            if contact and any(value.lower() == wanted for value in self.emails_of(contact_id)):
                return contact
        return None

    def note_emails(self, individual: Individual) -> None:
        """Make the email addresses among ``individual``'s methods findable by
        :meth:`contact_by_email`: called whenever its methods are set or added to."""
        for method in individual.methods:
            if "email" in method.type.lower():
                found = self._contacts_by_email.setdefault(method.value.lower(), set())
                found.add(individual.contact_id)

    def project_by(
        self, *, project_id: int | None, code: str | None, name: str | None
    ) -> Project | None:
        """Match a designation to a project by id, then code, then name."""
        if project_id is not None and project_id in self.projects:
            return self.projects[project_id]
        for project in self.projects.values():
            if code and project.code.lower() == code.lower():
                return project
        for project in self.projects.values():
            if name and project.name.lower() == name.lower():
                return project
        return None

    def gift_by_transaction(self, source: str, transaction_id: str) -> Gift | None:
        """The created gift with this (transactionSource, transactionId)."""
        found = self.gifts.by("transaction", transaction_key(source, transaction_id))
        return found[0] if found else None

    def gifts_of(self, contact_id: int) -> list[Gift]:
        """The contact's gifts, in the order they were created."""
        return self.gifts.by("contact", contact_id)

    def hold(self, pending: Pending) -> None:
        """Park an accepted transaction in the holding area until the next import."""
        self.pending.append(pending)
        if pending.kind == "gift" and pending.transaction_id:
            self.held_transactions.add(
                transaction_key(pending.transaction_source, pending.transaction_id)
            )

    def submitted(self, key: tuple[str, str]) -> bool:
        """Whether a gift transaction with this :func:`transaction_key` was submitted before:
        pending, imported or needing update, or a gift that carries it."""
        return key in self.held_transactions or self.gifts.has("transaction", key)

    # --- counts for /_emulator/state ---------------------------------------------------------

    def counts(self) -> Mapping[str, int]:
        """How many records of each kind exist."""
        return {
            "contacts": len(self.contacts),
            "individuals": len(self.individuals),
            "addresses": len(self.addresses),
            "projects": len(self.projects),
            "gifts": len(self.gifts),
            "recurringGifts": len(self.recurring_gifts),
            "pending": len(self.pending),
            "needsUpdate": len(self.needs_update),
            "outbox": len(self.outbox),
            "requests": len(self.requests),
        }


def _reference(source: str, reference_id: str) -> tuple[str, str]:
    return source.lower(), reference_id


def _contact_id(record: Individual | Address | Gift) -> int:
    return record.contact_id


def _gift_transaction(gift: Gift) -> tuple[str, str] | None:
    if not gift.transaction_id:
        return None
    return transaction_key(gift.transaction_source, gift.transaction_id)


def _reversed_gift(gift: Gift) -> int | None:
    return gift.reversed_gift_id


def transaction_key(source: str | None, transaction_id: str | None) -> tuple[str, str]:
    """What makes a transaction the same as another (see :func:`same_transaction`)."""
    return (source or "").lower(), transaction_id or ""


def same_transaction(
    source_a: str | None, id_a: str | None, source_b: str | None, id_b: str | None
) -> bool:
    """Sources ignore case (people type them); ids compare exactly (platforms issue them)."""
    return id_a == id_b and (source_a or "").lower() == (source_b or "").lower()
