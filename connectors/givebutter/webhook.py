"""``givebutter.webhook``: transactions Givebutter announces by webhook, read again from its API.

Givebutter publishes no signature for its deliveries, so they prove nothing: the URL carries a
secret (``?secret=...``, compared in constant time; a delivery without it, or with another, is
refused with 401), and every event's transaction is read again from the API
(``GET /v1/transactions/{id}``) before anything is written. ``refetch`` is therefore always on;
the delivered body only says which transaction to read.

The delivered envelope is not published either: the event name is read from ``type`` (or
``event``) and the transaction id from ``data.id``. ``transaction.succeeded`` and
``refund.created`` concern a transaction; the other events Givebutter offers (plans, contacts,
campaigns, tickets) are acknowledged and ignored. Records are keyed and shaped exactly as
``givebutter.transactions`` yields them (refund flags on the nested ``transactions[]`` entry), so
its recipes' ``map:`` and ``filter:`` work unchanged and a reconciling poll shares the ledger.

``connector webhooks register|list|remove`` use ``/v1/webhooks``: the secret goes into the URL
given to Givebutter, and is shown as ``***`` wherever the URL is printed.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, field_validator

from connectors.givebutter.models import Transaction
from connectors.givebutter.service import DEFAULT_BASE_URL, GivebutterSettings, givebutter_client
from connectors.http.pages import walk_pages
from connectors.http.paginators import NextUrlPaginator, PageRequest
from core.contract import ContractCheck
from core.errors import ConnectorError, FatalError, InvalidRecord
from core.http import Service
from core.source import Record, Unreadable
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    Subscription,
    WebhookSettings,
    WebhookSource,
    check_url_secret,
    json_body,
    masked,
    with_query,
)

if TYPE_CHECKING:  # responses come with a run: `validate` imports this module, sends none
    import httpx

NAME = "Givebutter"
TRANSACTION_EVENTS = ("transaction.succeeded", "refund.created")


class GivebutterWebhookSettings(WebhookSettings):
    known_events: ClassVar[tuple[str, ...]] = TRANSACTION_EVENTS

    secret: SecretStr | None = Field(
        default=None, description="the secret the webhook's URL carries (?secret=...)"
    )
    query_parameter: str = Field(
        default="secret", min_length=1, description="the URL's query parameter holding it"
    )
    refetch: bool = Field(
        default=True, description="always on: Givebutter's deliveries are unsigned"
    )
    api_key: SecretStr = Field(description="to read each transaction again from the API")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="for an emulator or a proxy")

    @field_validator("refetch")
    @classmethod
    def _always(cls, value: bool) -> bool:
        if not value:
            msg = (
                "Givebutter's deliveries are unsigned, so each transaction is read again from"
                " the API: refetch cannot be turned off"
            )
            raise ValueError(msg)
        return value


class GivebutterWebhook(WebhookSource):
    """Transactions Givebutter's webhooks name, read from its API as
    ``givebutter.transactions`` records."""

    name: ClassVar[str] = "givebutter.webhook"
    Settings: ClassVar[type[BaseModel]] = GivebutterWebhookSettings
    description: ClassVar[str] = "Givebutter transactions (webhooks), read again from the API"
    settings: GivebutterWebhookSettings

    def verify(self, delivery: Delivery) -> None:
        secret = self.signing_secret("the one in its URL")
        check_url_secret(delivery, self.settings.query_parameter, secret, NAME)

    def events(self, delivery: Delivery) -> list[Event]:
        payload = json_body(delivery, NAME)
        if not isinstance(payload, dict):
            raise MalformedDelivery("Givebutter delivery is not a JSON object")
        kind = payload.get("type") or payload.get("event")
        data = payload.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict) or data.get("id") is None:
            raise MalformedDelivery("Givebutter delivery without an event name and a data.id")
        return [
            Event(
                type=kind,
                key=str(data["id"]),
                record=data,  # unverified: only its id is used, to read it again
                id=str(payload["id"]) if payload.get("id") else None,
                occurred_at=payload.get("created_at"),
            )
        ]

    def selects(self, event: Event) -> bool:
        return event.type in (self.settings.events or TRANSACTION_EVENTS)

    def refetch(self, event: Event) -> Record | None:
        """The transaction as Givebutter's API has it now; None if it has none by that id."""
        from core.http import raise_for_status

        client, service = self._api
        response = client.get(f"/v1/transactions/{event.key}")
        if response.status_code == 404:
            return None
        raise_for_status(response, service)
        body: Any = response.json()
        # Laravel resources may come wrapped in "data".
        if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
            body = body["data"]
        checked = ContractCheck(Transaction, NAME, lambda r: event.key).check(body)
        if isinstance(checked, Unreadable):
            raise InvalidRecord(checked.reason)
        return checked

    # --- webhooks (/v1/webhooks) -----------------------------------------------------------

    def subscribe(self, url: str) -> Subscription:
        """A webhook delivering this recipe's events to ``url``, the secret in its query."""
        secret = self.url_secret()
        body = {
            "url": with_query(url, **{self.settings.query_parameter: secret}),
            "events": self.settings.events or list(TRANSACTION_EVENTS),
            "name": f"connector {self.context.recipe}"[:255],
            "enabled": True,
        }
        client, service = self._api
        response = client.post("/v1/webhooks", json=body)
        _refused_or_ok(response, service)
        return self._subscription(response.json())

    def subscriptions(self) -> list[Subscription]:
        client, service = self._api
        request = PageRequest("/v1/webhooks", {})
        pages = walk_pages(client, service, request, NextUrlPaginator("links.next"), "data")
        return [self._subscription(webhook) for page in pages for webhook in page]

    def unsubscribe(self, subscription_id: str) -> None:
        client, service = self._api
        response = client.delete(f"/v1/webhooks/{subscription_id}")
        if response.status_code == 404:
            msg = f"{NAME} has no webhook {subscription_id}"
            raise ConnectorError(msg)
        _refused_or_ok(response, service)

    @functools.cached_property
    def _api(self) -> tuple[httpx.Client, Service]:
        """One client for the source's life: a server reads many transactions again."""
        api = GivebutterSettings(api_key=self.settings.api_key, base_url=self.settings.base_url)
        return givebutter_client(api, self.context)

    def _subscription(self, webhook: Any) -> Subscription:
        if not isinstance(webhook, dict) or not webhook.get("id"):
            msg = f"{NAME} answered a webhook request without its id"
            raise ConnectorError(msg)
        url = str(webhook.get("url") or "")
        shown = masked(url, self.settings.query_parameter)
        events = webhook.get("events")
        return Subscription(str(webhook["id"]), shown, list(events or []))


def _refused_or_ok(response: httpx.Response, service: Service) -> None:
    """A refusal of a webhook request stops the command (a 422 names the field)."""
    from core.http import raise_for_status

    try:
        raise_for_status(response, service)
    except InvalidRecord as error:
        raise FatalError(error.message) from None
