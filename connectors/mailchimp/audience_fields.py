"""The merge fields an audience has, so the members sink can tell a tag it lacks before sending.

What Mailchimp does with a merge tag the audience does not define is not documented: it may drop
the value without a word (the member is written, the value lost) or refuse the member. Either way
the recipe names a field the audience does not have, so the sink reads the audience's tags once
per run (``GET /lists/{id}/merge-fields``) and dead-letters a member that names another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from connectors.mailchimp.service import call_on_list

if TYPE_CHECKING:
    from mailchimp_marketing.api.lists_api import ListsApi


#: Merge fields per request: Mailchimp's maximum ``count`` (an audience has far fewer).
PAGE = 1000


def merge_tags(api: ListsApi, list_id: str) -> list[str]:
    """Every merge tag of the audience, in Mailchimp's order."""
    tags: list[str] = []
    offset = 0
    while True:
        page = call_on_list(
            list_id,
            api.get_list_merge_fields,
            count=PAGE,
            offset=offset,
            fields=["merge_fields.tag", "total_items"],
        )
        fields = page.get("merge_fields") or [] if isinstance(page, dict) else []
        tags += [str(f["tag"]).upper() for f in fields if isinstance(f, dict) and f.get("tag")]
        offset += len(fields)
        if not fields or offset >= int(page.get("total_items") or 0):
            return tags


def lacking(payload: Mapping[str, Any], tags: list[str]) -> list[str]:
    """The merge tags ``payload`` sets that the audience does not have."""
    known = set(tags)
    return [tag for tag in payload.get("merge_fields") or {} if tag not in known]


def lacking_reason(missing: list[str], tags: list[str]) -> str:
    """What a dead letter says about a member whose tags the audience lacks."""
    named = ", ".join(missing)
    fields = "merge field" if len(missing) == 1 else "merge fields"
    return f"the audience has no {fields} {named} (it has {', '.join(tags) or 'none'})"
