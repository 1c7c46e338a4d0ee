"""Webhooks in the Mailchimp emulator: list webhooks through the API, and deliveries of member
changes as Mailchimp sends them (reference section 2.6).

``POST|GET /3.0/lists/{id}/webhooks``, ``GET|PATCH|DELETE /3.0/lists/{id}/webhooks/{webhook}``.
Creating one first GETs its URL, as Mailchimp does, and is refused unless the URL answers 200
(``validate_webhook_urls``).

A member change is POSTed, form-encoded with bracket keys (``data[merges][FNAME]``), to each of
the audience's webhooks whose ``events`` include its type and whose ``sources`` include who made
it: changes through the API are ``api``; ``POST /_emulator/act`` makes one as a subscriber
(``user``) or an account user (``admin``) would. The types: ``subscribe`` (a new or resubscribed
member), ``unsubscribe`` (``action`` ``unsub``, or ``delete`` when archived), ``cleaned``,
``upemail`` (a new address) and ``profile`` (other changes to merge fields). Failed deliveries are
retried on ``webhook_retry_delays`` (times ``webhook_delay_scale``); ``GET /_emulator/deliveries``
lists the attempts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.mailchimp import php_form
from connectors.mailchimp.emulator.merge_fields import blank_values
from connectors.mailchimp.emulator.store import Member, Refusal, hash_of
from core.emulation import attempts_json, empty_response, json_response

if TYPE_CHECKING:
    from connectors.mailchimp.emulator.store import EmulatorState

EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
SOURCES = ("user", "admin", "api")
_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp.com"}


@dataclass
class ListWebhook:
    id: str
    list_id: str
    url: str
    events: dict[str, bool] = field(default_factory=dict)
    sources: dict[str, bool] = field(default_factory=dict)

    def wants(self, event: str, source: str) -> bool:
        return self.events.get(event, False) and self.sources.get(source, False)


@dataclass(frozen=True)
class Snapshot:
    """A member as it was before a change: what decides which event the change fires."""

    email: str
    status: str
    merge_fields: dict[str, Any]

    @classmethod
    def of(cls, member: Member | None) -> Snapshot | None:
        if member is None:
            return None
        return cls(member.email, member.status, dict(member.merge_fields))


def webhook_json(hook: ListWebhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": {name: hook.events.get(name, False) for name in EVENTS},
        "sources": {name: hook.sources.get(name, False) for name in SOURCES},
        "list_id": hook.list_id,
        "_links": [],
    }


# --- deliveries ------------------------------------------------------------------------------


def fire_changes(
    state: EmulatorState, list_id: str, before: Snapshot | None, member: Member, source: str
) -> None:
    """Deliver what changed between ``before`` and ``member`` (now) to the audience's webhooks."""
    for event, data in _changes(_member_data(state, list_id, member), before, member):
        fire(state, list_id, event, data, source)


def fire(state: EmulatorState, list_id: str, event: str, data: dict[str, Any], source: str) -> None:
    hooks = [h for h in state.webhooks.get(list_id, {}).values() if h.wants(event, source)]
    if not hooks:
        return
    when = state.now().strftime("%Y-%m-%d %H:%M:%S")
    body = php_form.encode({"type": event, "fired_at": when, "data": data}).encode()
    for hook in hooks:
        state.deliverer.send(hook.url, body, _HEADERS, label=event)


def _member_data(state: EmulatorState, list_id: str, member: Member) -> dict[str, Any]:
    """A member as deliveries carry it: every merge field of the audience, blank or not."""
    merges = blank_values(state.merge_fields[list_id]) | member.merge_fields
    return {
        "id": member.id[:10],
        "email": member.email,
        "email_type": "html",
        "ip_opt": "",
        "web_id": str(member.web_id),
        "merges": {"EMAIL": member.email, **merges},
        "list_id": list_id,
    }


def _changes(
    data: dict[str, Any], before: Snapshot | None, member: Member
) -> list[tuple[str, dict[str, Any]]]:
    list_id = data["list_id"]
    if before is None or (before.status != "subscribed" and member.status == "subscribed"):
        return [("subscribe", data)] if member.status == "subscribed" else []
    found: list[tuple[str, dict[str, Any]]] = []
    if before.email.lower() != member.email.lower():
        found.append(
            (
                "upemail",
                {
                    "list_id": list_id,
                    "new_id": member.id[:10],
                    "new_email": member.email,
                    "old_email": before.email,
                },
            )
        )
    if before.status != member.status and member.status in ("unsubscribed", "archived"):
        action = "delete" if member.status == "archived" else "unsub"
        found.append(("unsubscribe", {**data, "action": action, "reason": "manual"}))
    elif before.status != member.status and member.status == "cleaned":
        found.append(
            (
                "cleaned",
                {"list_id": list_id, "campaign_id": "", "reason": "hard", "email": member.email},
            )
        )
    elif before.merge_fields != member.merge_fields:
        found.append(("profile", data))
    return found


# --- the API ---------------------------------------------------------------------------------


def _emulator(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def read_json(request: Request) -> dict[str, Any]:
    """A request's JSON object body (none: ``{}``), or Mailchimp's 400 for anything else."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        detail = "We encountered an unspecified JSON parsing error."
        raise Refusal(400, "JSON Parse Error", detail) from None
    if not isinstance(body, dict):
        raise Refusal(400, "JSON Parse Error", "The request body must be a JSON object.")
    return body


def _switches(given: Any, names: tuple[str, ...], default: dict[str, bool]) -> dict[str, bool]:
    if given is None:
        return dict(default)
    if not isinstance(given, dict):
        raise Refusal(400, "Invalid Resource", f"expected an object of {', '.join(names)}")
    return {name: given.get(name, default.get(name, False)) is True for name in names}


_ALL_EVENTS = dict.fromkeys(EVENTS, True)
_DEFAULT_SOURCES = {"user": True, "admin": True, "api": False}


async def create_webhook(request: Request) -> Response:
    state = _emulator(request)
    list_id = request.path_params["list_id"]
    state.audience(list_id)
    body = await read_json(request)
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise Refusal(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated.",
            [{"field": "url", "message": "This value should be a valid URL."}],
        )
    if state.settings.validate_webhook_urls:
        status = await asyncio.to_thread(state.deliverer.check, url)
        if status != 200:
            raise Refusal(
                400,
                "Invalid Resource",
                f"The URL {url.split('?')[0]} did not return HTTP status code 200 to a GET"
                " request; your webhook could not be validated.",
            )
    hook = ListWebhook(
        id=f"{next(state.webhook_ids):010x}",
        list_id=list_id,
        url=url,
        events=_switches(body.get("events"), EVENTS, _ALL_EVENTS),
        sources=_switches(body.get("sources"), SOURCES, _DEFAULT_SOURCES),
    )
    state.webhooks.setdefault(list_id, {})[hook.id] = hook
    return json_response(webhook_json(hook))


def _hook(request: Request) -> ListWebhook:
    state = _emulator(request)
    list_id = request.path_params["list_id"]
    state.audience(list_id)
    hook = state.webhooks.get(list_id, {}).get(request.path_params["webhook_id"])
    if hook is None:
        raise Refusal(404, "Resource Not Found", "The requested resource could not be found.")
    return hook


async def list_webhooks(request: Request) -> Response:
    state = _emulator(request)
    list_id = request.path_params["list_id"]
    state.audience(list_id)
    hooks = [webhook_json(h) for h in state.webhooks.get(list_id, {}).values()]
    return json_response(
        {"webhooks": hooks, "list_id": list_id, "total_items": len(hooks), "_links": []}
    )


async def get_webhook(request: Request) -> Response:
    return json_response(webhook_json(_hook(request)))


async def update_webhook(request: Request) -> Response:
    hook = _hook(request)
    body = await read_json(request)
    if isinstance(body.get("url"), str):
        hook.url = body["url"]
    hook.events = _switches(body.get("events"), EVENTS, hook.events)
    hook.sources = _switches(body.get("sources"), SOURCES, hook.sources)
    return json_response(webhook_json(hook))


async def delete_webhook(request: Request) -> Response:
    hook = _hook(request)
    del _emulator(request).webhooks[hook.list_id][hook.id]
    return empty_response(204)


_HOOK = "/3.0/lists/{list_id}/webhooks/{webhook_id}"
ROUTES = [
    Route("/3.0/lists/{list_id}/webhooks", create_webhook, methods=["POST"]),
    Route("/3.0/lists/{list_id}/webhooks", list_webhooks, methods=["GET"]),
    Route(_HOOK, get_webhook, methods=["GET"]),
    Route(_HOOK, update_webhook, methods=["PATCH"]),
    Route(_HOOK, delete_webhook, methods=["DELETE"]),
]


# --- the control plane -----------------------------------------------------------------------


async def act(request: Request) -> Response:
    """``POST /_emulator/act``: a change made by a subscriber or an account user, not the API.

    ``{"as": "user"|"admin", "list_id", "email_address", "status", "merge_fields",
    "new_email_address"}``; an unknown address is a new subscriber.
    """
    state = _emulator(request)
    body = await read_json(request)
    who = body.get("as", "user")
    if who not in ("user", "admin"):
        raise Refusal(400, "Invalid Resource", 'as must be "user" or "admin"')
    list_id = str(body.get("list_id") or next(iter(state.lists)))
    email = state.check_email(body.get("email_address"))
    found = state.audience(list_id).get(hash_of(email))
    before = Snapshot.of(found)
    change = {"email_address": email, "status_if_new": "subscribed"}
    change |= {k: body[k] for k in ("status", "merge_fields") if k in body}
    member = state.upsert(list_id, email, change, skip_merge_validation=True)
    if body.get("new_email_address"):
        update = {"email_address": body["new_email_address"]}
        member = state.update(list_id, member.id, update, skip_merge_validation=True)
    fire_changes(state, list_id, before, member, who)
    return json_response({"id": member.id, "status": member.status})


async def deliveries(request: Request) -> Response:
    """``GET /_emulator/deliveries``: every delivery attempt, oldest first."""
    return json_response(attempts_json(_emulator(request).deliverer))


CONTROL_ROUTES = [
    Route("/_emulator/act", act, methods=["POST"]),
    Route("/_emulator/deliveries", deliveries, methods=["GET"]),
]
