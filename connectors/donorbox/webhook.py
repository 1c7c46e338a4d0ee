"""``donorbox.webhook``: donations as Donorbox's custom webhooks deliver them, signed.

Donorbox signs each delivery with the endpoint's "Signature Secret":
``Donorbox-Signature: <unix time>,<hex HMAC-SHA256 of "<time>.<raw body>">``. A signature that
does not match, a missing header, or one older than ``tolerance_seconds`` when the delivery
arrived (a replay) is refused with 401. Donorbox does not publish its own tolerance; 300 s is
ours.

The v1 payload is a JSON array of donations, each shaped like an item of
``GET /api/v1/donations`` plus ``"action": "new"``; each becomes one record, keyed and checked
exactly as ``donorbox.donations`` keys and checks it (the donation's ``id``), so the polling
recipe's ``map:`` works unchanged and a reconciling poll shares the ledger. ``refetch: true``
reads the donation again (``GET /api/v1/donations?id=``), which needs the API add-on's
``email`` and ``api_key``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator

from connectors.donorbox.models import Donation
from connectors.donorbox.service import DEFAULT_BASE_URL, DonorboxSettings, donorbox_client
from connectors.http.pages import walk_pages
from connectors.http.paginators import PageNumberPaginator, PageRequest
from core.contract import ContractCheck
from core.errors import FatalError, InvalidRecord
from core.http import Service
from core.source import Record, Unreadable
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
    check_age,
    hmac_sha256,
    json_body,
    same_secret,
    signature_header,
)

if TYPE_CHECKING:  # responses come with a run: `validate` imports this module, sends none
    import httpx

NAME = "Donorbox"
#: The header's shape: ``<unix seconds>,<64 hex digits>``.
_SIGNATURE = re.compile(r"^\s*(\d{1,12})\s*,\s*([0-9a-fA-F]{64})\s*$")
#: A v1 donation's ``action`` -> the event type; "new" is documented, "update" is the Zapier-era
#: "New/Update donation" event's counterpart.
_ACTIONS = {"new": "donation.created", "update": "donation.updated"}
DONATION_EVENTS = ("donation.created", "donation.updated")


class DonorboxWebhookSettings(WebhookSettings):
    known_events: ClassVar[tuple[str, ...]] = DONATION_EVENTS

    secret: SecretStr | None = Field(
        default=None, description="the custom webhook's Signature Secret (its details page)"
    )
    tolerance_seconds: int = Field(
        300, ge=0, description="a signature older than this is refused as a replay (0: no limit)"
    )
    email: str | None = Field(default=None, description="for refetch: the login email")
    api_key: SecretStr | None = Field(default=None, description="for refetch: the API key")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="for an emulator or a proxy")

    @model_validator(mode="after")
    def _refetch_needs_the_api(self) -> DonorboxWebhookSettings:
        if self.refetch and not (self.email and self.api_key):
            msg = "refetch: true reads donations from Donorbox's API: set email and api_key"
            raise ValueError(msg)
        return self


class DonorboxWebhook(WebhookSource):
    """Donations from a Donorbox custom webhook, as ``donorbox.donations`` records."""

    name: ClassVar[str] = "donorbox.webhook"
    Settings: ClassVar[type[BaseModel]] = DonorboxWebhookSettings
    description: ClassVar[str] = "Donorbox donations (custom webhooks), signed"
    settings: DonorboxWebhookSettings

    def verify(self, delivery: Delivery) -> None:
        header = signature_header(delivery, "Donorbox-Signature", NAME)
        secret = self.signing_secret("the custom webhook's Signature Secret")
        found = _SIGNATURE.match(header)
        if found is None:
            raise WebhookRejected("Donorbox-Signature is not '<timestamp>,<hex signature>'")
        stamp, signature = found.groups()
        if not same_secret(sign(secret, delivery.body, stamp), signature.lower()):
            raise WebhookRejected("Donorbox signature does not match the body and the secret")
        check_age(int(stamp), delivery, self.settings.tolerance_seconds, NAME)

    def events(self, delivery: Delivery) -> list[Event]:
        payload = json_body(delivery, NAME)
        donations = payload if isinstance(payload, list) else [payload]
        check = ContractCheck(Donation, NAME, lambda donation: str(donation.get("id")))
        return [_event(donation, check) for donation in donations]

    def selects(self, event: Event) -> bool:
        return event.type in (self.settings.events or DONATION_EVENTS)

    def refetch(self, event: Event) -> Record | None:
        """The donation as Donorbox's API has it now; None if it no longer lists it."""
        client, service = self._api
        request = PageRequest("/api/v1/donations", {"id": event.key})
        paginator = PageNumberPaginator("page", 1, "per_page", 100)
        listed = next(walk_pages(client, service, request, paginator), [])
        if any(str(donation.get("id")) != event.key for donation in listed):
            # Returning None would say the donation is gone; a filter ignored says nothing.
            msg = f"{NAME} answered other donations when asked for donation {event.key}"
            raise FatalError(msg)
        if not listed:
            return None
        checked = ContractCheck(Donation, NAME, lambda donation: event.key).check(listed[0])
        if isinstance(checked, Unreadable):
            raise InvalidRecord(checked.reason)
        return checked

    @functools.cached_property
    def _api(self) -> tuple[httpx.Client, Service]:
        """One client for the source's life: a server reads many donations again."""
        s = self.settings
        if not (s.email and s.api_key):
            msg = "donorbox.webhook cannot read a donation again without email and api_key"
            raise FatalError(msg)
        api = DonorboxSettings(email=s.email, api_key=s.api_key, base_url=s.base_url)
        return donorbox_client(api, self.context)


def sign(secret: str, body: bytes, stamp: int | str) -> str:
    """Donorbox's signature of ``body`` sent at ``stamp``: hex HMAC-SHA256 of "<stamp>.<body>"."""
    return hmac_sha256(secret, f"{stamp}.".encode() + body)


def _event(donation: Any, check: ContractCheck) -> Event:
    if not isinstance(donation, Mapping):
        raise MalformedDelivery("Donorbox delivery holds something other than a donation")
    checked = check.check(dict(donation))
    if isinstance(checked, Unreadable):
        raise MalformedDelivery(checked.reason)
    action = str(checked.get("action") or "new")
    return Event(
        type=_ACTIONS.get(action, f"donation.{action}"),
        key=str(checked["id"]),
        record=checked,
        occurred_at=str(checked["donation_date"]),
    )
