"""Transforms for recipes that move people between Mailchimp and a CRM.

``record.tags | mailchimp_tag_names | join(';')`` turns Mailchimp's ``[{id, name}]`` tags into
``"Donor;Volunteer"``; ``record.contactIndividuals | primary_email`` picks the address a Mailchimp
member is keyed by out of a CRM contact's individuals and their contact methods, and
``email_owner`` the individual it belongs to (whose name the member should carry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def mailchimp_tag_names(tags: Any) -> list[str] | None:
    """The names of Mailchimp tags (``[{"id": 1, "name": "Donor"}]`` -> ``["Donor"]``)."""
    if tags is None:
        return None
    if not isinstance(tags, list):
        msg = f"mailchimp_tag_names expects a list of tags, got {type(tags).__name__}"
        raise TypeError(msg)
    names = (t.get("name") if isinstance(t, Mapping) else t for t in tags)
    return [str(n) for n in names if n not in (None, "")]


def _is_email(method: Any) -> bool:
    return (
        isinstance(method, Mapping)
        and "email" in str(method.get("type") or "").lower()
        and bool(method.get("value"))
    )


def primary_email(people: Any) -> str | None:
    """The primary email among contact individuals (each with ``contactMethods``) or methods.

    The primary individual's primary email wins, then any of their emails, then anyone's; a
    method is an email when its ``type`` says so ("Home Email", "Work Email"). A deceased
    individual's addresses (``isDeceased``) are never picked: nobody should be mailed there.
    """
    found = _email_and_owner(people, "primary_email")
    return str(found[1]["value"]).strip() if found is not None else None


def email_owner(people: Any) -> Mapping[str, Any] | None:
    """The contact individual whose address :func:`primary_email` picks, so that a member's
    name is the name of the person the address belongs to:
    ``(record.contactIndividuals | email_owner)["firstName"]``. None when nobody has an email."""
    found = _email_and_owner(people, "email_owner")
    return found[0] if found is not None else None


def _email_and_owner(people: Any, name: str) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The individual and the email method :func:`primary_email` chooses, or None."""
    if people is None:
        return None
    if not isinstance(people, list):
        msg = f"{name} expects a list, got {type(people).__name__}"
        raise TypeError(msg)
    if all(isinstance(p, Mapping) and "contactMethods" not in p for p in people):
        people = [{"isPrimary": True, "contactMethods": people}]
    living = (p for p in people if isinstance(p, Mapping) and p.get("isDeceased") is not True)
    ordered = sorted(living, key=lambda p: not p.get("isPrimary"))
    for person in ordered:
        emails = [m for m in person.get("contactMethods") or [] if _is_email(m)]
        if emails:
            return person, next((m for m in emails if m.get("isPrimary")), emails[0])
    return None
