"""Mailchimp's ADDRESS merge fields, which are all or nothing.

A merge field that takes an object is an address (every other type takes text or a number).
Mailchimp refuses one that lacks any of addr1, city, state and zip, so the members sink leaves out
an address with no parts at all (Mailchimp keeps the one it holds) and dead-letters one with only
some of them, naming what is missing. ``country`` may be left out: where Mailchimp takes that, the
field's default country applies; where it does not, Mailchimp's refusal names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The parts Mailchimp refuses an address without, in the order a message names them.
REQUIRED_PARTS = ("addr1", "city", "state", "zip")


def address_parts(value: Mapping[str, Any]) -> dict[str, str]:
    """The parts that hold something, as text (a zip code read as a number stays a zip code)."""
    parts = {}
    for name, part in value.items():
        text = str(part).strip() if part is not None else ""
        if text:
            parts[str(name)] = text
    return parts


def missing_parts(address: Mapping[str, Any]) -> list[str]:
    """The required parts ``address`` lacks (``[]`` for a whole address)."""
    return [name for name in REQUIRED_PARTS if not str(address.get(name) or "").strip()]
