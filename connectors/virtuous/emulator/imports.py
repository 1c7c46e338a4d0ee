"""The nightly import: turning parked transactions into contacts and gifts, and firing webhooks.

Contact matching, in order: the transaction's ``contact.id``; an external reference (the gift's
``transactionSource`` or the contact's ``referenceSource``, plus ``referenceId``); an email
address. No match creates a contact; a match is merged (new names overwrite, new emails, phones
and addresses are added). A gift that cannot be placed (unknown contact id, gift type or project)
goes to ``needs_update`` instead, as in the real import, and never shows up in reads; so does one
accepted with missing or bad values (lenient validation), with those problems as its reason.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.virtuous.emulator.shapes import contact_webhook, gift_webhook
from connectors.virtuous.emulator.store import (
    Address,
    Contact,
    ContactMethod,
    Designation,
    EmulatorState,
    Gift,
    Individual,
    Payload,
    Project,
    RecurringGift,
    same_transaction,
)
from connectors.virtuous.emulator.transactions import (
    FREQUENCIES,
    custom_fields,
    designations_of,
    parse_amount,
    parse_date,
    parse_int,
    text,
)
from connectors.virtuous.emulator.webhooks import record_webhook
from connectors.virtuous.vocabulary import GIFT_TYPE_ALIASES, GIFT_TYPE_NAMES

if TYPE_CHECKING:
    from connectors.virtuous.emulator.settings import EmulatorSettings

GIFT_TYPES = {name.lower(): name for name in GIFT_TYPE_NAMES} | {
    alias.lower(): name for alias, name in GIFT_TYPE_ALIASES.items()
}
"""Accepted gift types and their aliases, mapped to the name reads and webhooks use."""

_INDIVIDUAL_FIELDS = {
    "title": "prefix",
    "prefix": "prefix",
    "firstname": "first_name",
    "middlename": "middle_name",
    "lastname": "last_name",
    "suffix": "suffix",
    "gender": "gender",
}
_INDIVIDUAL_INTS = {"birthmonth": "birth_month", "birthday": "birth_day", "birthyear": "birth_year"}
_ADDRESS_FIELDS = ("address1", "address2", "city", "state", "postal", "country")


# --- contacts --------------------------------------------------------------------------------


def flatten_gift_contact(contact: Payload) -> Payload:
    """A gift transaction's ``contact`` in the flat contact-transaction form."""
    flat = {k: v for k, v in contact.items() if k != "address"}
    address = contact.get("address")
    if isinstance(address, dict):
        flat.update({k: address.get(k) for k in _ADDRESS_FIELDS})
    if "type" in flat and "contacttype" not in flat:
        flat["contacttype"] = flat.pop("type")
    return flat


def _person_name(flat: Payload) -> str:
    return " ".join(filter(None, (text(flat, "firstname"), text(flat, "lastname"))))


def _add_method(state: EmulatorState, individual: Individual, kind: str, value: str) -> bool:
    if any(m.value.lower() == value.lower() for m in individual.methods):
        return False
    primary = not any(kind.split()[-1].lower() in m.type.lower() for m in individual.methods)
    method = ContactMethod(
        id=state.next_id("method"), type=kind, value=value, is_primary=primary, **state.stamp()
    )
    individual.methods.append(method)
    state.note_emails(individual)
    return True


def _merge_person(state: EmulatorState, contact: Contact, flat: Payload) -> bool:
    people = state.individuals_of(contact.id)
    if not people and not (text(flat, "firstname") or text(flat, "lastname")):
        return False
    if not people:
        first = Individual(
            id=state.next_id("individual"), contact_id=contact.id, is_primary=True, **state.stamp()
        )
        state.individuals[first.id] = first
        people = [first]
    person, changed = people[0], False
    for key, attr in _INDIVIDUAL_FIELDS.items():
        value = text(flat, key)
        if value and getattr(person, attr) != value:
            setattr(person, attr, value)
            changed = True
    for key, attr in _INDIVIDUAL_INTS.items():
        number = parse_int(flat.get(key)) if flat.get(key) not in (None, "") else None
        if number is not None and getattr(person, attr) != number:
            setattr(person, attr, number)
            changed = True
    email, phone = text(flat, "email"), text(flat, "phone")
    if email:
        changed |= _add_method(state, person, text(flat, "emailtype") or "Home Email", email)
    if phone:
        changed |= _add_method(state, person, text(flat, "phonetype") or "Home Phone", phone)
    if changed:
        state.touch(person)
    return changed


def _merge_into(state: EmulatorState, contact: Contact, flat: Payload, source: str | None) -> bool:
    changed = _merge_person(state, contact, flat)
    reference = text(flat, "referenceid")
    if reference and source and state.contact_by_reference(source, reference) is None:
        state.add_reference(contact, source, reference)
        changed = True
    changed |= _merge_address(state, contact, flat)
    for tag in (text(flat, "tags") or "").split(";"):
        if tag.strip() and tag.strip() not in contact.tags:
            contact.tags.append(tag.strip())
            changed = True
    for name in flat.get("emaillists") or []:
        if isinstance(name, str) and name not in contact.email_lists:
            contact.email_lists.append(name)
            changed = True
    fields = custom_fields(flat.get("customfields")) or {}
    if any(contact.custom_fields.get(k) != v for k, v in fields.items()):
        contact.custom_fields.update(fields)
        changed = True
    if contact.contact_type.lower() in ("organization", "foundation") and text(flat, "name"):
        changed |= contact.name != text(flat, "name")
        contact.name = text(flat, "name") or contact.name
    if changed:
        state.touch(contact)
    return changed


def _merge_address(state: EmulatorState, contact: Contact, flat: Payload) -> bool:
    line = text(flat, "address1")
    if not line:
        return False
    existing = state.addresses_of(contact.id)
    if any((a.address1 or "").lower() == line.lower() for a in existing):
        return False
    for old in existing:  # the newest address a donor gives becomes the primary one
        old.is_primary = False
    address = Address(
        id=state.next_id("address"),
        contact_id=contact.id,
        label="Home",
        is_primary=True,
        address1=line,
        address2=text(flat, "address2"),
        city=text(flat, "city"),
        state=text(flat, "state"),
        postal=text(flat, "postal"),
        country=text(flat, "country"),
        **state.stamp(),
    )
    state.addresses[address.id] = address
    return True


def create_contact(
    state: EmulatorState, flat: Payload, source: str | None, wanted_id: int | None = None
) -> Contact:
    """A new contact (with its primary individual, methods and address) from a flat payload."""
    kind = text(flat, "contacttype") or "Household"
    contact = Contact(
        id=state.next_id("contact", wanted_id),
        contact_type=kind,
        name=text(flat, "name") or _person_name(flat) or (text(flat, "email") or "Unknown"),
        informal_name=text(flat, "firstname"),
        origin_segment=text(flat, "originsegmentcode"),
        **state.stamp(),
    )
    state.contacts[contact.id] = contact
    _merge_into(state, contact, flat, source)
    contact.modified = contact.created
    return contact


def match_contact(
    state: EmulatorState, flat: Payload, source: str | None
) -> tuple[Contact | None, str | None]:
    """The existing contact a transaction belongs to, or why it cannot be placed."""
    if text(flat, "id"):
        found = state.contacts.get(parse_int(flat["id"]) or 0)
        return (found, None) if found else (None, f"contact {flat['id']} does not exist")
    reference = text(flat, "referenceid")
    if reference and source:
        found = state.contact_by_reference(source, reference)
        if found:
            return found, None
    email = text(flat, "email")
    return (state.contact_by_email(email) if email else None), None


def upsert_contact(
    state: EmulatorState,
    settings: EmulatorSettings,
    flat: Payload,
    source: str | None,
    tally: Counter[str],
) -> Contact:
    """Match or create the contact, merge it, and record the webhook that would fire."""
    contact, _ = match_contact(state, flat, source)
    if contact is None:
        contact = create_contact(state, flat, source)
        tally["contactsCreated"] += 1
        record_webhook(state, settings, "ContactCreate", contact_webhook(state, contact))
    elif _merge_into(state, contact, flat, source):
        tally["contactsUpdated"] += 1
        record_webhook(state, settings, "ContactUpdate", contact_webhook(state, contact))
    return contact


# --- gifts -----------------------------------------------------------------------------------


def resolve_designations(
    state: EmulatorState, tx: Payload
) -> tuple[list[tuple[Project, Decimal]], str | None]:
    """Projects for a transaction's designations, matched by id, code or name."""
    _, items = designations_of(tx)
    found: list[tuple[Project, Decimal]] = []
    for item in items or []:
        project = state.project_by(
            project_id=parse_int(item.get("projectid", item.get("id"))),
            code=text(item, "projectcode") or text(item, "code"),
            name=text(item, "projectname") or text(item, "name"),
        )
        if project is None:
            return [], f"no project matches designation {item}"
        found.append((project, parse_amount(item.get("amountdesignated")) or Decimal(0)))
    return found, None


def build_gift(
    state: EmulatorState,
    tx: Payload,
    contact: Contact,
    projects: list[tuple[Project, Decimal]],
    wanted_id: int | None = None,
) -> Gift:
    """A gift from a validated transaction (or a seed, which may choose its id), not stored."""
    people = state.individuals_of(contact.id)
    gift_type = text(tx, "gifttype") or "Other"
    dedication = tx.get("tributededication")
    dedication = dedication if isinstance(dedication, dict) else {}
    gift = Gift(
        id=state.next_id("gift", wanted_id),
        contact_id=contact.id,
        contact_individual_id=parse_int(tx.get("contactindividualid"))
        or (people[0].id if people else None),
        gift_type=GIFT_TYPES.get(gift_type.lower(), gift_type),
        gift_date=parse_date(tx.get("giftdate")) or state.now().date(),
        amount=parse_amount(tx.get("amount")) or Decimal(0),
        transaction_source=text(tx, "transactionsource"),
        transaction_id=text(tx, "transactionid"),
        currency_code=(text(tx, "currencycode") or "USD").upper(),
        exchange_rate=parse_amount(tx.get("exchangerate")) or Decimal(1),
        batch=text(tx, "batch"),
        notes=text(tx, "notes"),
        segment_code=text(tx, "segment") or text(tx, "segmentcode"),
        media_outlet=text(tx, "mediaoutlet"),
        receipt_date=parse_date(tx.get("receiptdate")),
        check_number=text(tx, "checknumber"),
        credit_card_type=text(tx, "creditcardtype"),
        cash_accounting_code=text(tx, "cashaccountingcode"),
        tribute=text(tx, "tribute")
        or " ".join(
            filter(
                None, [text(dedication, "tributefirstname"), text(dedication, "tributelastname")]
            )
        )
        or None,
        tribute_type=text(dedication, "tributetype"),
        is_private=tx.get("isprivate") is True,
        is_tax_deductible=tx.get("istaxdeductible") is not False,
        custom_fields=custom_fields(tx.get("customfields")) or {},
        **state.stamp(),
    )
    gift.designations = [
        Designation(id=state.next_id("designation"), project_id=p.id, amount=amount)
        for p, amount in projects
    ]
    return gift


def _link_recurring(state: EmulatorState, tx: Payload, gift: Gift) -> None:
    frequency = FREQUENCIES.get((text(tx, "frequency") or "").lower(), "OneTime")
    schedule_id = text(tx, "recurringgifttransactionid")
    recurring = None
    if schedule_id:
        recurring = next(
            (
                r
                for r in state.recurring_gifts.values()
                if same_transaction(
                    r.transaction_source, r.transaction_id, gift.transaction_source, schedule_id
                )
            ),
            None,
        )
    if recurring is None and frequency != "OneTime":
        recurring = RecurringGift(
            id=state.next_id("recurring"),
            contact_id=gift.contact_id,
            amount=gift.amount,
            frequency=frequency,
            start_date=gift.gift_date,
            transaction_source=gift.transaction_source,
            transaction_id=schedule_id or gift.transaction_id,
            **state.stamp(),
        )
        state.recurring_gifts[recurring.id] = recurring
    if recurring is not None:
        recurring.payment_gift_ids.append(gift.id)
        if tx.get("recurringgifttransactionupdate") is True:
            recurring.amount = gift.amount
            state.touch(recurring)
        gift.recurring_gift_id = recurring.id


def _import_gift(
    state: EmulatorState, settings: EmulatorSettings, tx: Payload, tally: Counter[str]
) -> str | None:
    flat = flatten_gift_contact(tx.get("contact") or {})
    source = text(tx, "transactionsource")
    _, problem = match_contact(state, flat, source)
    gift_type = (text(tx, "gifttype") or "").lower()
    if problem is None and gift_type not in GIFT_TYPES:
        problem = f"unknown gift type {text(tx, 'gifttype')!r}"
    projects, problem = ([], problem) if problem else resolve_designations(state, tx)
    if problem:
        return problem
    contact = upsert_contact(state, settings, flat, source, tally)
    gift = build_gift(state, tx, contact, projects)
    passthrough = tx.get("passthroughcontact")
    if isinstance(passthrough, dict) and passthrough:
        gift.passthrough_contact_id = upsert_contact(
            state, settings, flatten_gift_contact(passthrough), source, tally
        ).id
    state.gifts[gift.id] = gift
    _link_recurring(state, tx, gift)
    tally["giftsCreated"] += 1
    record_webhook(state, settings, "GiftCreate", gift_webhook(state, gift))
    return None


def run_import(
    state: EmulatorState, settings: EmulatorSettings, source: str | None = None
) -> dict[str, Any]:
    """Import every parked transaction (of one source, if given); returns a summary."""
    wanted = None if source is None else source.lower()
    todo = [p for p in state.pending if wanted in (None, (p.transaction_source or "").lower())]
    taken = {id(p) for p in todo}  # by identity: comparing dataclasses made this N²
    state.pending = [p for p in state.pending if id(p) not in taken]
    tally: Counter[str] = Counter()
    needs_update = []
    for pending in todo:
        if pending.kind == "contact":
            upsert_contact(
                state, settings, pending.payload, text(pending.payload, "referencesource"), tally
            )
            problem = None
        else:
            problem = pending.problem or _import_gift(state, settings, pending.payload, tally)
        if problem:
            pending.reason = problem
            state.needs_update.append(pending)
            needs_update.append(
                {
                    "transactionSource": pending.transaction_source,
                    "transactionId": pending.transaction_id,
                    "reason": problem,
                }
            )
        else:
            state.imported.append(pending)
    return {
        "imported": len(todo) - len(needs_update),
        "contactsCreated": tally["contactsCreated"],
        "contactsUpdated": tally["contactsUpdated"],
        "giftsCreated": tally["giftsCreated"],
        "needsUpdate": needs_update,
        "pending": len(state.pending),
    }
