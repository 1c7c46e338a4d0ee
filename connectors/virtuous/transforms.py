"""Transforms for recipes that read Virtuous records.

Virtuous returns custom fields as ``[{name, value, displayName}]`` on reads but as a map on
transactions and webhooks, and a gift's designations as a list of projects with amounts:
``record.customFields | custom_field('Stripe Fee')`` and
``record.giftDesignations | designations_text`` turn them into single cells.
``(record.contactIndividuals | primary_individual)["firstName"]`` is the name a contact's
update (the ``virtuous.contacts`` sink) changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.virtuous import pairing
from core.transforms import round_money, to_str


def custom_field(fields: Any, name: str) -> Any:
    """The value of the custom field ``name``, from either of Virtuous's shapes; else None."""
    if fields is None:
        return None
    if isinstance(fields, Mapping):
        return fields.get(name)
    if not isinstance(fields, list):
        msg = f"custom_field expects a list or map of custom fields, got {type(fields).__name__}"
        raise TypeError(msg)
    for field in fields:
        if isinstance(field, Mapping) and name in (field.get("name"), field.get("displayName")):
            return field.get("value")
    return None


def designations_text(
    designations: Any, currency: str | None = None, sep: str = "; "
) -> str | None:
    """``"GENERAL 50.00; MISSIONS 25.00"``: each designation's project code and amount.

    With ``currency``, amounts have that currency's decimal places.
    """
    if designations is None:
        return None
    if not isinstance(designations, list):
        msg = f"designations_text expects a list, got {type(designations).__name__}"
        raise TypeError(msg)
    parts = []
    for row in designations:
        if not isinstance(row, Mapping):
            continue
        project = row.get("projectCode") or row.get("project") or row.get("projectId")
        amount = row.get("amountDesignated")
        amount = to_str(round_money(amount, currency) if currency else amount)
        parts.append(" ".join(str(p) for p in (project, amount) if p not in (None, "")))
    return sep.join(p for p in parts if p) or None


def primary_individual(individuals: Any) -> Mapping[str, Any] | None:
    """The primary individual of a contact (``isPrimary``, else the first); None for none."""
    if individuals is None:
        return None
    if not isinstance(individuals, list):
        msg = f"primary_individual expects a list, got {type(individuals).__name__}"
        raise TypeError(msg)
    return pairing.primary_individual({"contactIndividuals": individuals})
