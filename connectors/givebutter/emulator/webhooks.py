"""Givebutter's webhook subscriptions as its published OpenAPI describes them (``/v1/webhooks``,
``webhooks.store|index|show|update|destroy``; ``WebhookResource``), for the emulator.

A body is ``{url, event | events, name, enabled}``: ``url`` is required (and ``events``, with at
least one, on update), every event is one of the twelve the spec lists, ``name`` at most 255
characters. A refusal is Laravel's 422 naming the field. What the spec leaves open is this
emulator's choice: a new webhook is enabled, its ``last_status`` fields are empty strings until
something is delivered, and its ``signature`` is null (the spec does not say what it holds).
"""

from __future__ import annotations

from typing import Any

#: The events ``POST /v1/webhooks`` accepts (its ``event`` / ``events`` enum).
EVENTS = (
    "campaign.created",
    "campaign.updated",
    "ticket.created",
    "transaction.succeeded",
    "contact.created",
    "plan.canceled",
    "plan.created",
    "plan.failed",
    "plan.paused",
    "plan.resumed",
    "plan.updated",
    "refund.created",
)

Problem = tuple[str, str]


def requested_events(body: dict[str, Any]) -> list[str]:
    """``events``, or the single ``event``, as a list."""
    if body.get("events") is not None:
        events = body["events"]
        return list(events) if isinstance(events, list) else [events]
    return [body["event"]] if body.get("event") is not None else []


def problem(body: Any, *, update: bool) -> Problem | None:
    """The first field the body gets wrong, and Laravel's message for it."""
    if not isinstance(body, dict):
        return "url", "The url field is required."
    url = body.get("url")
    if not url:
        return "url", "The url field is required."
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return "url", "The url field must be a valid URL."
    events = requested_events(body)
    if update and not events:
        return "events", "The events field is required."
    for index, event in enumerate(events):
        if event not in EVENTS:
            return f"events.{index}", f"The selected events.{index} is invalid."
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        return "name", "The name field must not be greater than 255 characters."
    if "enabled" in body and not isinstance(body["enabled"], bool):
        return "enabled", "The enabled field must be true or false."
    return None


def resource(webhook_id: str, body: dict[str, Any], at: str) -> dict[str, Any]:
    """A new ``WebhookResource``."""
    return {
        "id": webhook_id,
        "name": body.get("name"),
        "signature": None,
        "events": requested_events(body),
        "enabled": body.get("enabled", True),
        "url": body["url"],
        "last_status": "",
        "last_status_description": "",
        "last_used_at": "",
        "created_at": at,
        "updated_at": at,
    }
