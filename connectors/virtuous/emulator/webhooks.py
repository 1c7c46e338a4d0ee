"""Webhooks in the Virtuous emulator: subscriptions through ``/api/Webhook``, deliveries that fire
on the import run and on direct changes, and the direct gift changes that fire GiftUpdate and
GiftDelete.

Subscriptions (reference section 7): ``POST /api/Webhook`` ``{payloadUrl, secret, contactCreate,
..., giftDelete, active}``, ``GET|PUT|DELETE /api/Webhook/{id}``, ``PUT
/api/Webhook/{id}/Active?active=true|false``. No call lists them all, as on the real API.

Each change is POSTed as ``{"event": "GiftCreate", "gift": {...}}`` to every active subscription
with that event switched on, signed with the subscription's secret (the header and encoding are
the settings' ``webhook_signature_header`` and ``webhook_signature_encoding``), by the state's
:class:`~core.emulation.WebhookDeliverer`, which retries any answer but 2xx on the settings'
``webhook_retry_delays`` (times ``webhook_delay_scale``). ``GET /_emulator/deliveries`` lists the
attempts. The emulator keeps one organization's records, so every subscription sees every change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.virtuous.emulator.gateway import (
    Principal,
    api,
    emulator,
    error,
    not_found,
    object_body,
)
from connectors.virtuous.emulator.shapes import dotnet_datetime, gift_full, gift_webhook
from connectors.virtuous.emulator.transactions import parse_amount, parse_date, text
from core.emulation import (
    attempts_json,
    empty_response,
    hmac_sha256,
    json_default,
    json_response,
)

if TYPE_CHECKING:
    from connectors.virtuous.emulator.settings import EmulatorSettings
    from connectors.virtuous.emulator.store import EmulatorState

#: The subscription switches, in the order the reference lists them.
TOGGLES = (
    "contactCreate",
    "contactUpdate",
    "giftCreate",
    "giftUpdate",
    "giftDelete",
    "projectCreate",
    "projectUpdate",
    "projectDelete",
    "formSubmission",
    "contactNoteCreate",
    "contactNoteUpdate",
    "contactNoteDelete",
    "eventCreate",
    "eventUpdate",
    "eventDelete",
)


@dataclass
class Webhook:
    """One subscription."""

    id: int
    org: str
    payload_url: str
    secret: str | None = None
    active: bool = True
    toggles: dict[str, bool] = field(default_factory=dict)

    def wants(self, event: str) -> bool:
        return self.active and self.toggles.get(event[0].lower() + event[1:], False)


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "payloadUrl": webhook.payload_url,
        "secret": webhook.secret,
        **{name: webhook.toggles.get(name, False) for name in TOGGLES},
        "active": webhook.active,
    }


def record_webhook(state: EmulatorState, settings: EmulatorSettings, event: str, data: Any) -> None:
    """Fire ``event`` about ``data``: deliver it to the subscriptions that want it, and keep
    the payload, signed with the settings' ``webhook_secret``, in ``state.outbox``."""
    key = "gift" if event.startswith("Gift") else "contact"
    body = json.dumps({"event": event, key: data}, default=json_default)
    deliver(state, event, body.encode())
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if settings.webhook_secret:
        headers[settings.webhook_signature_header] = hmac_sha256(
            settings.webhook_secret, body.encode(), settings.webhook_signature_encoding
        )
    state.outbox.append(
        {
            "event": event,
            "payload": json.loads(body),
            "body": body,
            "headers": headers,
            "created": dotnet_datetime(state.now()),
        }
    )


def deliver(state: EmulatorState, event: str, body: bytes) -> None:
    """Queue ``body`` for every subscription that wants ``event``, signed with its secret."""
    settings = state.settings
    for webhook in state.webhooks.values():
        if not webhook.wants(event):
            continue
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Virtuous"}
        if webhook.secret:
            headers[settings.webhook_signature_header] = hmac_sha256(
                webhook.secret, body, settings.webhook_signature_encoding
            )
        state.deliverer.send(webhook.payload_url, body, headers, label=event)


# --- subscriptions ---------------------------------------------------------------------------


def _apply(webhook: Webhook, body: dict[str, Any], *, replace: bool) -> None:
    """Copy a subscription body (keys lower-cased) onto ``webhook``: what it names, or all."""
    if "payloadurl" in body or replace:
        webhook.payload_url = text(body, "payloadurl") or ""
    if "secret" in body or replace:
        webhook.secret = text(body, "secret")
    if "active" in body or replace:
        webhook.active = body.get("active") is not False
    for name in TOGGLES:
        if name.lower() in body or replace:
            webhook.toggles[name] = body.get(name.lower()) is True
    # "Send me everything", the UI's default, when a new subscription names no event.
    if replace and not any(webhook.toggles.values()):
        webhook.toggles = dict.fromkeys(TOGGLES, True)


def _invalid_url(state: EmulatorState, webhook: Webhook) -> Response | None:
    if webhook.payload_url.startswith(("http://", "https://")):
        return None
    message = "The PayloadUrl field is required and must be an absolute URL."
    return error(state, 400, "The request is invalid.", {"webhook.payloadUrl": [message]})


@api("webhooks:write")
async def create_webhook(request: Request, who: Principal) -> Response:
    """``POST /api/Webhook``."""
    state = emulator(request)
    body, problem = await object_body(request, "webhook")
    if problem:
        return problem
    webhook = Webhook(id=state.next_id("webhook"), org=who.org, payload_url="")
    _apply(webhook, body, replace=True)
    invalid = _invalid_url(state, webhook)
    if invalid:
        return invalid
    state.webhooks[webhook.id] = webhook
    return json_response(webhook_json(webhook))


def _webhook(request: Request, who: Principal) -> Webhook | None:
    found = emulator(request).webhooks.get(request.path_params["webhook_id"])
    return found if found is not None and found.org == who.org else None


@api("webhooks:write")
async def get_webhook(request: Request, who: Principal) -> Response:
    """``GET /api/Webhook/{id}``."""
    webhook = _webhook(request, who)
    return json_response(webhook_json(webhook)) if webhook else not_found(emulator(request))


@api("webhooks:write")
async def put_webhook(request: Request, who: Principal) -> Response:
    """``PUT /api/Webhook/{id}``: the fields the body names (see contacts' PUT on replacement)."""
    state, webhook = emulator(request), _webhook(request, who)
    if webhook is None:
        return not_found(state)
    body, problem = await object_body(request, "webhook")
    if problem:
        return problem
    _apply(webhook, body, replace=False)
    return _invalid_url(state, webhook) or json_response(webhook_json(webhook))


@api("webhooks:write")
async def set_active(request: Request, who: Principal) -> Response:
    """``PUT /api/Webhook/{id}/Active?active=true|false``."""
    state, webhook = emulator(request), _webhook(request, who)
    if webhook is None:
        return not_found(state)
    value = (request.query_params.get("active") or "").lower()
    if value not in ("true", "false"):
        return error(state, 400, "The request is invalid.", {"active": ["Not a valid boolean."]})
    webhook.active = value == "true"
    return json_response(webhook_json(webhook))


@api("webhooks:write")
async def delete_webhook(request: Request, who: Principal) -> Response:
    """``DELETE /api/Webhook/{id}``."""
    state, webhook = emulator(request), _webhook(request, who)
    if webhook is None:
        return not_found(state)
    del state.webhooks[webhook.id]
    return empty_response()


# --- direct gift changes ---------------------------------------------------------------------

_GIFT_TEXT = {
    "notes": "notes",
    "batch": "batch",
    "segmentcode": "segment_code",
    "checknumber": "check_number",
    "cashaccountingcode": "cash_accounting_code",
}


@api("gifts:write")
async def put_gift(request: Request, who: Principal) -> Response:
    """``PUT /api/Gift/{id}``: the scalar fields the body names change; fires GiftUpdate."""
    state = emulator(request)
    gift = state.gifts.get(request.path_params["gift_id"])
    if gift is None:
        return not_found(state)
    body, problem = await object_body(request, "gift")
    if problem:
        return problem
    amount = parse_amount(body.get("amount")) if "amount" in body else gift.amount
    day = parse_date(body.get("giftdate")) if "giftdate" in body else gift.gift_date
    if amount is None or day is None:
        field_name = "gift.amount" if amount is None else "gift.giftDate"
        return error(state, 400, "The request is invalid.", {field_name: ["Not a valid value."]})
    gift.amount, gift.gift_date = amount, day
    for key, attr in _GIFT_TEXT.items():
        if key in body:
            setattr(gift, attr, text(body, key))
    state.touch(gift)
    record_webhook(state, state.settings, "GiftUpdate", gift_webhook(state, gift))
    return json_response(gift_full(state, gift))


@api("gifts:write")
async def delete_gift(request: Request, who: Principal) -> Response:
    """``DELETE /api/Gift/{id}``: irreversible; fires GiftDelete with the gift as it was."""
    state = emulator(request)
    gift = state.gifts.get(request.path_params["gift_id"])
    if gift is None:
        return not_found(state)
    payload = gift_webhook(state, gift)
    del state.gifts[gift.id]
    record_webhook(state, state.settings, "GiftDelete", payload)
    return empty_response()


async def deliveries(request: Request) -> Response:
    """``GET /_emulator/deliveries``: every delivery attempt, oldest first."""
    return json_response(attempts_json(emulator(request).deliverer))


ROUTES = [
    Route("/api/Webhook", create_webhook, methods=["POST"]),
    Route("/api/Webhook/{webhook_id:int}", get_webhook, methods=["GET"]),
    Route("/api/Webhook/{webhook_id:int}", put_webhook, methods=["PUT"]),
    Route("/api/Webhook/{webhook_id:int}", delete_webhook, methods=["DELETE"]),
    Route("/api/Webhook/{webhook_id:int}/Active", set_active, methods=["PUT"]),
    Route("/api/Gift/{gift_id:int}", put_gift, methods=["PUT"]),
    Route("/api/Gift/{gift_id:int}", delete_gift, methods=["DELETE"]),
]
