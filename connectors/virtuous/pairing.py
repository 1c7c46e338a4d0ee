"""A Virtuous contact as a two-way pair compares it (see :mod:`core.two_way`): its fields named
as the ``virtuous.contacts`` sink's payload names them, the names being its primary
individual's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.source import Seen, utc_moment

#: Fields of the contact itself, and of its primary individual, that the contacts sink writes.
CONTACT_FIELDS = ("contactType", "name", "informalName", "description", "website", "maritalStatus")
INDIVIDUAL_FIELDS = ("firstName", "lastName", "middleName")


def contact_seen(contact: Mapping[str, Any]) -> Seen:
    fields = {name: contact[name] for name in CONTACT_FIELDS if contact.get(name) is not None}
    person = primary_individual(contact)
    if person is not None:
        fields.update({k: person[k] for k in INDIVIDUAL_FIELDS if person.get(k) is not None})
        email = _primary_email(person)
        if email is not None:
            fields["email"] = email
    return Seen(fields, utc_moment(contact.get("modifiedDateTimeUtc")))


def primary_individual(contact: Mapping[str, Any]) -> Mapping[str, Any] | None:
    individuals = contact.get("contactIndividuals") or []
    return next((i for i in individuals if i.get("isPrimary")), None) or (
        individuals[0] if individuals else None
    )


def contact_key(sink_key: str) -> str | None:
    """The contact's id in ``contact/<id>``, as the contacts sink reports an update."""
    kind, _, number = sink_key.partition("/")
    return number if kind == "contact" and number.isdigit() else None


def _primary_email(person: Mapping[str, Any]) -> str | None:
    emails = [
        m for m in person.get("contactMethods") or [] if "email" in str(m.get("type", "")).lower()
    ]
    primary = [m for m in emails if m.get("isPrimary")]
    chosen = (primary or emails or [None])[0]
    return str(chosen["value"]).strip().lower() if chosen and chosen.get("value") else None
