"""A Mailchimp member as a two-way pair compares it (see :mod:`core.two_way`): fields named as
the ``mailchimp.members`` sink's payload names them (``merge_fields.FNAME``), the address in
lower case (Mailchimp matches addresses so), and each tag as ``tags.<name>``, since the sink
adds tags and never takes one away: a member holds what was written when it has those tags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.source import Seen, utc_moment


def member_seen(member: Mapping[str, Any]) -> Seen:
    merge_fields = member.get("merge_fields") or {}
    names = (t.get("name") if isinstance(t, Mapping) else t for t in member.get("tags") or [])
    fields = _fields(member.get("email_address"), member.get("status"), merge_fields, names)
    return Seen(fields, utc_moment(member.get("last_changed")))


def payload_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the members sink sets in Mailchimp when it writes ``payload``."""
    merge_fields = payload.get("merge_fields") or {}
    status = payload.get("status")  # status_if_new changes nothing of a member that exists
    return _fields(payload.get("email_address"), status, merge_fields, payload.get("tags") or [])


def _fields(
    email: Any, status: Any, merge_fields: Mapping[str, Any], tags: Iterable[Any]
) -> dict[str, Any]:
    fields: dict[str, Any] = {"email_address": str(email or "").strip().lower()}
    if status:
        fields["status"] = status
    for tag, value in merge_fields.items():
        if value not in (None, "", {}):  # Mailchimp reads an unset field as ""
            fields[f"merge_fields.{str(tag).upper()}"] = value
    fields.update({f"tags.{name}": True for name in tags if name})
    return fields
