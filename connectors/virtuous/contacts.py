"""``virtuous.contacts``: update existing contacts in place (find, GET, merge, PUT)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from connectors.virtuous.contact_models import ContactUpdate
from connectors.virtuous.pairing import CONTACT_FIELDS, INDIVIDUAL_FIELDS, contact_key, contact_seen
from connectors.virtuous.service import VirtuousSettings
from connectors.virtuous.sink import OneByOne
from connectors.virtuous.transactions import IDEMPOTENT, check_single
from core.outcomes import Outcome, WriteItem, WriteResult
from core.source import Seen


class ContactUpdateSettings(VirtuousSettings):
    if_missing: Literal["create", "needs_review"] = Field(
        default="needs_review",
        description="when no contact matches: create it through a contact transaction, or"
        " leave the record for a person to review",
    )


class Contacts(OneByOne):
    """Finds the contact by reference (source and id), then by email. PUT replaces the whole
    contact in Virtuous, so the current contact is read first and only mapped fields change."""

    name: ClassVar[str] = "virtuous.contacts"
    Settings: ClassVar[type[BaseModel]] = ContactUpdateSettings
    Model: ClassVar[type[BaseModel] | None] = ContactUpdate
    supports_update: ClassVar[bool] = True
    description: ClassVar[str] = "updates of existing Virtuous contacts"
    settings: ContactUpdateSettings

    @property
    def batch_size(self) -> int:
        return 25  # one record is several requests; commit progress often

    def write_one(self, item: WriteItem) -> WriteResult:
        contact = self._find(item.payload)
        if contact is None:
            return self._missing(item)
        changes = {k: item.payload[k] for k in CONTACT_FIELDS if item.payload.get(k) is not None}
        custom = item.payload.get("customFields")
        if changes or custom:
            merged = {**contact, **changes}
            if custom:
                merged["customFields"] = _merge_custom(contact.get("customFields"), custom)
            response = self.client.put(f"/api/Contact/{contact['id']}", json=merged)
            check_single(response, self.service)
        self._update_individual(contact, item.payload)
        return WriteResult(item.key, Outcome.UPDATED, sink_key=f"contact/{contact['id']}")

    def preview_one(self, item: WriteItem) -> WriteResult:
        """Looked up as :meth:`write_one` would: found, it is updated; else it needs review,
        or is created (``if_missing: create``)."""
        if self._find(item.payload) is not None:
            return WriteResult(item.key, Outcome.UPDATED)
        if self.settings.if_missing == "needs_review":
            return self._missing(item)
        return WriteResult(item.key, Outcome.WRITTEN)

    def pair_fields(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        written = (*CONTACT_FIELDS, *INDIVIDUAL_FIELDS)
        return {name: payload[name] for name in written if payload.get(name) is not None}

    def pair_key(self, sink_key: str) -> str | None:
        return contact_key(sink_key)

    def pair_current(self, items: Sequence[WriteItem]) -> dict[str, Seen]:
        self.reader()
        found = {item.key: self._find(item.payload) for item in items}
        return {key: contact_seen(contact) for key, contact in found.items() if contact}

    def _find(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        lookups = []
        if payload.get("referenceSource") and payload.get("referenceId"):
            lookups.append(
                {
                    "referenceSource": payload["referenceSource"],
                    "referenceId": payload["referenceId"],
                }
            )
        if payload.get("email"):
            lookups.append({"email": payload["email"]})
        for params in lookups:
            response = self.client.get("/api/Contact/Find", params=params)
            if response.status_code == 404:
                continue
            check_single(response, self.service)
            found: dict[str, Any] = response.json()
            return found
        return None

    def _update_individual(self, contact: dict[str, Any], payload: dict[str, Any]) -> None:
        changes = {k: payload[k] for k in INDIVIDUAL_FIELDS if payload.get(k) is not None}
        individuals = contact.get("contactIndividuals") or []
        primary = next((i for i in individuals if i.get("isPrimary")), None) or (
            individuals[0] if individuals else None
        )
        if not changes or primary is None:
            return
        if all(primary.get(k) == v for k, v in changes.items()):
            return
        response = self.client.put(
            f"/api/ContactIndividual/{primary['id']}", json={**primary, **changes}
        )
        check_single(response, self.service)

    def _missing(self, item: WriteItem) -> WriteResult:
        payload = item.payload
        who = payload.get("email") or (
            f"{payload.get('referenceSource')}/{payload.get('referenceId')}"
        )
        if self.settings.if_missing == "needs_review":
            reason = (
                f"no Virtuous contact matches {who}: once a person has added or matched it in"
                " Virtuous, `connector dlq retry` updates it (or `connector dlq resolve` leaves"
                " it as it is)"
            )
            return WriteResult(item.key, Outcome.NEEDS_REVIEW, reason=reason)
        body = {
            k: v
            for k, v in payload.items()
            if k not in ("informalName", "description", "website", "maritalStatus")
        }
        # ContactUpdate guarantees a reference or an email, so a repeat merges into one contact.
        response = self.client.post("/api/Contact/Transaction", json=body, extensions=IDEMPOTENT)
        check_single(response, self.service)
        source = quote(str(payload.get("referenceSource") or ""), safe="")
        reference = quote(str(payload.get("referenceId") or ""), safe="")
        return WriteResult(item.key, Outcome.WRITTEN, sink_key=f"ref/{source}/{reference}")


def _merge_custom(current: Any, changes: dict[str, str]) -> list[dict[str, Any]]:
    """Contact reads give custom fields as [{name, value, displayName}]; keep the others."""
    fields = [dict(f) for f in current or [] if isinstance(f, dict)]
    by_name = {str(f.get("displayName") or f.get("name")): f for f in fields}
    for name, value in changes.items():
        if name in by_name:
            by_name[name]["value"] = value
        else:
            fields.append({"name": name, "value": value, "displayName": name})
    return fields
