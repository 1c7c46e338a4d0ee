"""How the Virtuous emulator renders its records as JSON, quirks included.

* Full reads: amounts are numbers, ``giftDate`` is ``YYYY-MM-DDT00:00:00``, ``*DateTimeUtc`` values
  are UTC without a ``Z`` and with .NET's trimmed fractional seconds, custom fields are
  ``[{name, value, displayName}]`` (projects: an object).
* Abbreviated rows: amounts are culture-formatted strings (``"$10.50"``), dates are ``M/d/yyyy``.
* Webhook payloads: the full record, but custom fields as an object map.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.virtuous.emulator.store import (
    Address,
    Contact,
    ContactMethod,
    EmulatorState,
    Gift,
    Individual,
    Project,
)

Json = dict[str, Any]
USER = "Virtuous Emulator"
_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "NZD": "$", "GBP": "£", "EUR": "€"}


def dotnet_datetime(value: datetime) -> str:
    """``2023-12-07T16:10:47.017``: UTC, no offset, .NET's ``FFFFFFF`` fraction."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    fraction = f"{utc.microsecond:06d}0".rstrip("0")
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{fraction}" if fraction else text


def midnight(value: date | None) -> str | None:
    """A date as the API writes it: ``2023-12-07T00:00:00``."""
    return None if value is None else f"{value.isoformat()}T00:00:00"


def mdy(value: date | None) -> str:
    """``12/7/2023`` (en-US short date), or ``""``."""
    return "" if value is None else f"{value.month}/{value.day}/{value.year}"


def money(amount: Decimal, currency: str = "USD", places: int = 2) -> str:
    """``$1,234.50``; ``-$10.50`` when negative. Unknown currencies get their code as prefix."""
    symbol = _SYMBOLS.get(currency.upper(), f"{currency.upper()} ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.{places}f}"


def _audit(record: Any) -> Json:
    return {
        "createDateTimeUtc": dotnet_datetime(record.created),
        "createdByUser": USER,
        "modifiedDateTimeUtc": dotnet_datetime(record.modified),
        "modifiedByUser": USER,
    }


def custom_field_list(fields: dict[str, str]) -> list[Json]:
    """Custom fields as contact and gift reads carry them."""
    return [{"name": k, "value": v, "displayName": k} for k, v in fields.items()]


# --- gifts -----------------------------------------------------------------------------------


def _designation(state: EmulatorState, gift: Gift) -> list[Json]:
    rows = []
    for designation in gift.designations:
        project = state.projects.get(designation.project_id)
        rows.append(
            {
                "id": designation.id,
                "projectId": designation.project_id,
                "project": project.name if project else None,
                "projectCode": project.code if project else None,
                "externalAccountingCode": project.external_accounting_code if project else None,
                "projectType": project.type if project else None,
                "projectLocation": project.location if project else None,
                "projectUrl": f"/api/Project/{designation.project_id}",
                "amountDesignated": designation.amount,
                "display": project.name if project else None,
            }
        )
    return rows


def _recurring_payments(state: EmulatorState, gift: Gift) -> list[Json]:
    recurring = state.recurring_gifts.get(gift.recurring_gift_id or 0)
    if recurring is None:
        return []
    return [
        {
            "id": recurring.id,
            "gift": None,
            "expectedAmount": recurring.amount,
            "expectedPaymentDate": midnight(gift.gift_date),
            "dismissPaymentDate": None,
            "fulfillPaymentDate": midnight(gift.gift_date),
        }
    ]


def gift_full(state: EmulatorState, gift: Gift) -> Json:
    """``GET /api/Gift/{id}`` and FullGift query rows."""
    contact = state.contacts.get(gift.contact_id)
    passthrough = gift.passthrough_contact_id
    return {
        "id": gift.id,
        "transactionSource": gift.transaction_source,
        "transactionId": gift.transaction_id,
        "contactId": gift.contact_id,
        "contactName": contact.name if contact else None,
        "contactUrl": f"/api/Contact/{gift.contact_id}",
        "giftType": gift.gift_type,
        "giftTypeFormatted": gift.gift_type,
        "giftDate": midnight(gift.gift_date),
        "giftDateFormatted": mdy(gift.gift_date),
        "amount": gift.amount,
        "amountFormatted": money(gift.amount, gift.currency_code),
        "currencyCode": gift.currency_code,
        "exchangeRate": gift.exchange_rate,
        "baseCurrencyCode": "USD",
        "batch": gift.batch,
        **_audit(gift),
        "segmentId": None,
        "segment": gift.segment_code,
        "segmentCode": gift.segment_code,
        "segmentUrl": None,
        "mediaOutletId": None,
        "mediaOutlet": gift.media_outlet,
        "grantId": None,
        "grant": None,
        "grantUrl": None,
        "notes": gift.notes or "",
        "tribute": gift.tribute,
        "tributeId": None,
        "tributeType": gift.tribute_type,
        "acknowledgeeIndividualId": None,
        "isAcknowledgedGift": False,
        "acknowledgementDate": None,
        "acknowledgementNotes": "",
        "receiptDate": midnight(gift.receipt_date),
        "receiptDateFormatted": mdy(gift.receipt_date),
        "contactPassthroughId": passthrough,
        "contactPassthroughUrl": f"/api/Contact/{passthrough}" if passthrough else None,
        "contactIndividualId": gift.contact_individual_id,
        "cashAccountingCode": gift.cash_accounting_code,
        "giftAskId": None,
        "contactMembershipId": None,
        "giftDesignations": _designation(state, gift),
        "giftPremiums": [],
        "pledgePayments": [],
        "recurringGiftPayments": _recurring_payments(state, gift),
        "giftPassthroughs": [],
        "giftUrl": f"/api/Gift/{gift.id}",
        "isPrivate": gift.is_private,
        "isTaxDeductible": gift.is_tax_deductible,
        "customFields": custom_field_list(gift.custom_fields),
    }


def gift_row(gift: Gift) -> Json:
    """Abbreviated rows of ``Gift/Query`` and ``Gift/ByContact``."""
    return {
        "id": gift.id,
        "contactId": gift.contact_id,
        "contactIndividualId": gift.contact_individual_id,
        "giftType": gift.gift_type,
        "giftDate": mdy(gift.gift_date),
        "amount": money(gift.amount, gift.currency_code),
        "segment": gift.segment_code,
        "batch": gift.batch,
        "giftUrl": f"/api/Gift/{gift.id}",
        "culture": None,
        "exchangeRate": gift.exchange_rate,
        "currencyCode": gift.currency_code,
        "baseCurrencyCode": "USD",
    }


def gift_webhook(state: EmulatorState, gift: Gift) -> Json:
    """The ``gift`` of a GiftCreate payload: the full gift with custom fields as a map."""
    return {**gift_full(state, gift), "customFields": dict(gift.custom_fields)}


# --- contacts --------------------------------------------------------------------------------


def method_json(method: ContactMethod) -> Json:
    """One contact method."""
    return {
        "id": method.id,
        "type": method.type,
        "value": method.value,
        "isOptedIn": method.is_opted_in,
        "isPrimary": method.is_primary,
        "canBePrimary": not method.is_primary,
        **_audit(method),
    }


def individual_json(individual: Individual) -> Json:
    """``GET /api/ContactIndividual/{id}`` and the items of ``contactIndividuals``."""
    born = (individual.birth_year, individual.birth_month, individual.birth_day)
    birth_date = f"{born[1]}/{born[2]}/{born[0]}" if all(born) else ""
    return {
        "id": individual.id,
        "contactId": individual.contact_id,
        "prefix": individual.prefix,
        "prefix2": None,
        "firstName": individual.first_name,
        "middleName": individual.middle_name,
        "lastName": individual.last_name,
        "preMarriageName": None,
        "suffix": individual.suffix,
        "nickname": individual.nickname,
        "gender": individual.gender,
        "isPrimary": individual.is_primary,
        "canBePrimary": not individual.is_primary,
        "isSecondary": individual.is_secondary,
        "canBeSecondary": not individual.is_secondary,
        "birthMonth": individual.birth_month,
        "birthDay": individual.birth_day,
        "birthYear": individual.birth_year,
        "birthDate": birth_date,
        "approximateAge": individual.approximate_age,
        "isDeceased": individual.is_deceased,
        "deceasedDate": "",
        "passion": individual.passion,
        "avatarUrl": None,
        "contactMethods": [method_json(m) for m in individual.methods],
        **_audit(individual),
        "customFields": custom_field_list(individual.custom_fields),
        "customCollections": [],
    }


def address_json(address: Address, *, with_contact: bool = False) -> Json:
    """A contact address; ``with_contact`` adds ``contactId`` (the standalone endpoint)."""
    shape: Json = {"contactId": address.contact_id} if with_contact else {}
    return shape | {
        "id": address.id,
        "label": address.label,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "state": address.state,
        "postal": address.postal,
        "country": address.country,
        "isPrimary": address.is_primary,
        "canBePrimary": not address.is_primary,
        "startMonth": address.start_month,
        "startDay": address.start_day,
        "endMonth": address.end_month,
        "endDay": address.end_day,
        **_audit(address),
    }


def _giving(state: EmulatorState, contact: Contact) -> Json:
    gifts = sorted(
        state.gifts_of(contact.id),
        key=lambda g: (g.gift_date, g.id),
    )
    year = state.now().year
    last = gifts[-1] if gifts else None
    return {
        "giftAskAmount": "",
        "giftAskType": None,
        "lifeToDateGiving": money(sum((g.amount for g in gifts), Decimal(0)), places=0),
        "yearToDateGiving": money(
            sum((g.amount for g in gifts if g.gift_date.year == year), Decimal(0)), places=0
        ),
        "lastGiftAmount": money(last.amount if last else Decimal(0), places=0),
        "lastGiftDate": mdy(last.gift_date) if last else "Unavailable",
    }


def contact_full(state: EmulatorState, contact: Contact) -> Json:
    """``GET /api/Contact/{id}`` and FullContact query rows."""
    address = state.primary_address(contact.id)
    cid = contact.id
    return {
        "id": cid,
        "contactType": contact.contact_type,
        "isPrivate": contact.is_private,
        "name": contact.name,
        "informalName": contact.informal_name,
        "formalContactName": contact.name,
        "alternateContactName": contact.name,
        "preferredSalutationName": contact.informal_name or contact.name,
        "preferredAddresseeName": contact.name,
        "description": contact.description,
        "website": contact.website,
        "maritalStatus": contact.marital_status,
        "anniversaryMonth": contact.anniversary_month,
        "anniversaryDay": contact.anniversary_day,
        "anniversaryYear": contact.anniversary_year,
        "mergedIntoContactId": None,
        "address": address_json(address) if address else None,
        **_giving(state, contact),
        "contactIndividuals": [individual_json(i) for i in state.individuals_of(cid)],
        "contactGiftsUrl": f"/api/Gift/ByContact/{cid}",
        "contactPassthroughGiftsUrl": f"/api/Gift/Passthrough/ByContact/{cid}",
        "contactPlannedGiftsUrl": f"/api/PlannedGift/ByContact/{cid}",
        "contactRecurringGiftsUrl": f"/api/RecurringGift/ByContact/{cid}",
        "contactImportantNotesUrl": f"/api/ContactNote/Important/ByContact/{cid}",
        "contactNotesUrl": f"/api/ContactNote/ByContact/{cid}",
        "contactTagsUrl": f"/api/ContactTag/ByContact/{cid}",
        "contactRelationshipsUrl": f"/api/Relationship/ByContact/{cid}",
        "primaryAvatarUrl": None,
        "contactReferences": [{"source": s, "id": i} for s, i in contact.references],
        "originSegmentId": None,
        "originSegment": contact.origin_segment,
        **_audit(contact),
        "tags": list(contact.tags),
        "organizationGroups": list(contact.organization_groups),
        "isCurrentUserFollowing": False,
        "customFields": custom_field_list(contact.custom_fields),
        "customCollections": [],
    }


def contact_row(state: EmulatorState, contact: Contact) -> Json:
    """Abbreviated rows of ``Contact/Query`` (the shape recorded for ``Contact/Search``)."""
    individual = next(iter(state.individuals_of(contact.id)), None)
    methods = list(state.methods_of(contact.id))
    email = next((m.value for m in methods if "email" in m.type.lower()), None)
    phone = next((m.value for m in methods if "phone" in m.type.lower()), None)
    address = state.primary_address(contact.id)
    line = None
    if address is not None:
        parts = [
            address.address1,
            address.city,
            " ".join(filter(None, [address.state, address.postal])),
        ]
        line = ", ".join(p for p in parts if p)
    person = (
        " ".join(filter(None, [individual.first_name, individual.last_name]))
        if individual
        else None
    )
    return {
        "individualId": individual.id if individual else None,
        "id": contact.id,
        "name": person or contact.name,
        "contactType": contact.contact_type,
        "contactName": contact.name,
        "address": line,
        "email": email,
        "phone": phone,
        "contactViewUrl": f"/Generosity/Contact/View/{contact.id}",
    }


def contact_webhook(state: EmulatorState, contact: Contact) -> Json:
    """The ``contact`` of a ContactCreate/ContactUpdate payload."""
    return {
        **contact_full(state, contact),
        "customContactType": None,
        "contactAddresses": [address_json(a) for a in state.addresses_of(contact.id)],
        "customFields": dict(contact.custom_fields),
    }


def project_json(project: Project) -> Json:
    """``GET /api/Project/{id}`` and Project query rows; custom fields are an object here."""
    return {
        "id": project.id,
        "name": project.name,
        "projectCode": project.code,
        "externalAccountingCode": project.external_accounting_code,
        "onlineDisplayName": project.online_display_name,
        "description": project.description,
        "photoUrl": None,
        "parentId": project.parent_id,
        "parentName": None,
        "isSubProject": project.parent_id is not None,
        "inventoryStatus": None,
        "type": project.type,
        "location": project.location,
        "isRestrictedToGiftSpecifications": False,
        "isLimitedToFinancialNeed": False,
        "isPublic": project.is_public,
        "isActive": project.is_active,
        "isAvailableOnline": project.is_available_online,
        "isTaxDeductible": project.is_tax_deductible,
        "treatAsAccountsPayable": False,
        "beginningBalance": 0.0,
        "currentBalance": 0.0,
        "financialNeedType": None,
        "financialNeedFrequency": None,
        "financialNeedAmount": 0.0,
        "startDate": midnight(project.start_date),
        "endDate": midnight(project.end_date),
        "durationType": None,
        **_audit(project),
        "giftSpecifications": [],
        "customFields": dict(project.custom_fields),
    }
