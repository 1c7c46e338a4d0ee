"""Mailchimp's batch subscribe endpoint (``POST /lists/{id}``), as the members sink uses it.

The endpoint has no ``status_if_new``: with ``update_existing`` it sets the ``status`` of every
member it is sent, existing ones too, so a ``status_if_new: pending`` sink would turn subscribed
members back into pending ones (and send them a confirmation email). So:

* payloads that name a ``status`` go with ``update_existing: true``: that status is meant for
  everyone, new or not;
* payloads without one go with ``update_existing: false`` and ``status_if_new`` as the status: new
  members are created in bulk, and each one Mailchimp reports as already a member
  (``ERROR_CONTACT_EXISTS``) is handed back, for the sink to upsert with the exact
  ``PUT ... status_if_new`` rule that leaves their status alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.mailchimp.service import call_on_list
from core.errors import RetriableError, SkippableError
from core.outcomes import Outcome, WriteItem, WriteResult

if TYPE_CHECKING:
    from mailchimp_marketing.api.lists_api import ListsApi


#: Members per call of the batch subscribe endpoint, Mailchimp's maximum.
BATCH_MAX = 500
#: The ``error_code`` of a member that is already in the audience.
CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"


@dataclass
class BatchOutcome:
    """What one or more batch subscribe calls did with their members."""

    taken: list[WriteItem] = field(default_factory=list)  # created or updated
    existing: list[WriteItem] = field(default_factory=list)  # already members: upsert them
    results: list[WriteResult] = field(default_factory=list)  # refused or failed

    def extend(self, other: BatchOutcome) -> None:
        self.taken += other.taken
        self.existing += other.existing
        self.results += other.results


def subscribe_all(
    api: ListsApi, list_id: str, items: Sequence[WriteItem], status_if_new: str
) -> BatchOutcome:
    """Send ``items`` through the batch endpoint, ``BATCH_MAX`` at a time (see the module doc)."""
    explicit = [item for item in items if item.payload.get("status")]
    implicit = [item for item in items if not item.payload.get("status")]
    outcome = BatchOutcome()
    for group, update_existing in ((explicit, True), (implicit, False)):
        for start in range(0, len(group), BATCH_MAX):
            chunk = group[start : start + BATCH_MAX]
            outcome.extend(_subscribe(api, list_id, chunk, status_if_new, update_existing))
    return outcome


def _member(payload: dict[str, Any], status_if_new: str) -> dict[str, Any]:
    member: dict[str, Any] = {
        "email_address": payload["email_address"],
        "status": payload.get("status") or payload.get("status_if_new") or status_if_new,
    }
    if payload.get("merge_fields"):
        member["merge_fields"] = payload["merge_fields"]
    return member


def _subscribe(
    api: ListsApi,
    list_id: str,
    chunk: Sequence[WriteItem],
    status_if_new: str,
    update_existing: bool,
) -> BatchOutcome:
    """One batch subscribe call."""
    members = [_member(item.payload, status_if_new) for item in chunk]
    body = {"members": members, "update_existing": update_existing}
    try:
        answer = call_on_list(list_id, api.batch_list_members, body)
    except SkippableError as error:
        refused = [WriteResult(i.key, Outcome.INVALID, reason=error.message) for i in chunk]
        return BatchOutcome(results=refused)
    except RetriableError as error:
        failed = [WriteResult(i.key, Outcome.FAILED, reason=str(error)) for i in chunk]
        return BatchOutcome(results=failed)
    if not isinstance(answer, dict):
        reason = "Mailchimp answered the batch subscribe without a body"
        return BatchOutcome(
            results=[WriteResult(i.key, Outcome.FAILED, reason=reason) for i in chunk]
        )
    refused_by_email = {
        str(e.get("email_address") or "").strip().lower(): e
        for e in answer.get("errors") or []
        if isinstance(e, dict)
    }
    outcome = BatchOutcome()
    for item in chunk:
        entry = refused_by_email.get(str(item.payload["email_address"]).strip().lower())
        if entry is None:
            outcome.taken.append(item)
        elif not update_existing and entry.get("error_code") == CONTACT_EXISTS:
            outcome.existing.append(item)
        else:
            outcome.results.append(_refusal(item, entry))
    return outcome


def _refusal(item: WriteItem, entry: dict[str, Any]) -> WriteResult:
    reason = f"Mailchimp refused the member: {entry.get('error') or 'no reason given'}"
    if entry.get("field_message"):  # the field a validation names, as the single calls say it
        reason += f" ({entry.get('field') or '?'}: {entry['field_message']})"
    if entry.get("error_code"):
        reason += f" ({entry['error_code']})"
    field = str(entry["field"]) if entry.get("field") else None
    return WriteResult(item.key, Outcome.INVALID, reason=reason, field=field)
