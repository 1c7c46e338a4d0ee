"""``mailchimp.webhook``: audience changes as Mailchimp delivers them.

Deliveries are form-encoded POSTs with PHP-style bracket keys (``data[merges][FNAME]``, see
:mod:`.php_form`): ``type`` (subscribe, unsubscribe, profile, upemail, cleaned, campaign),
``fired_at`` (``2009-03-26 21:35:57``, UTC) and ``data``. They carry no signature: the URL holds a
secret (``?secret=...``), which is compared in constant time with the ``secret`` setting, and
Mailchimp checks the URL with a GET before it delivers, answered 200.

A member event's key is the member's subscriber hash (the MD5 of the lower-case address), the key
``mailchimp.members`` gives the same member, and its record has that source's field names:
``id``, ``email_address``, ``unique_email_id``, ``email_type``, ``web_id``, ``merge_fields``
(``EMAIL`` and the interest groupings left out, as members carry them elsewhere), ``ip_signup``,
``ip_opt``, ``list_id``, and ``last_changed`` from ``fired_at``. Where the delivery says less:

- ``status`` is set by the event (subscribed, unsubscribed, archived for an unsubscribe whose
  action is ``delete``, cleaned); a ``profile`` event does not say it, so it has none;
- ``upemail`` gives only the new and old addresses: the record is keyed by the new one and
  keeps the old one as ``previous_email_address``;
- tags, stats, interests and the rest of a member are not delivered: ``refetch: true`` reads the
  member from the API instead.

``unsubscribe`` and ``cleaned`` reasons, the unsubscribe action and the campaign id are in the
event's ``extra``. A ``campaign`` event is keyed ``campaign:<id>`` (it is no member).
Subscriptions go through the audience's webhooks (``/lists/{list_id}/webhooks``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from connectors.mailchimp import php_form
from connectors.mailchimp.pairing import member_seen
from connectors.mailchimp.service import (
    MailchimpRejected,
    MailchimpSettings,
    call,
    call_on_list,
    lists_api,
    subscriber_hash,
)
from core.errors import ConnectorError
from core.source import Record, Seen
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    Subscription,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
    check_url_secret,
    masked,
    with_query,
)

if TYPE_CHECKING:
    from mailchimp_marketing.api.lists_api import ListsApi

EVENT_TYPES = ("subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign")
_STATUS = {"subscribe": "subscribed", "unsubscribe": "unsubscribed", "cleaned": "cleaned"}
#: Merges a member does not carry in ``merge_fields``.
_NOT_MERGE_FIELDS = frozenset({"EMAIL", "INTERESTS", "GROUPINGS"})
#: Member fields a delivery's ``data`` gives under the same name.
_SAME_NAME = ("email_type", "ip_signup", "ip_opt", "list_id")
_EXTRA = ("reason", "action", "campaign_id")

ChangeSource = Literal["user", "admin", "api"]
_PEOPLE: tuple[ChangeSource, ...] = ("user", "admin")


class MailchimpWebhookSettings(WebhookSettings, MailchimpSettings):
    """The URL's secret and the events of one audience's webhook; the API key and audience are
    for refetch and subscriptions."""

    known_events: ClassVar[tuple[str, ...]] = EVENT_TYPES

    sources: list[ChangeSource] = Field(
        default_factory=lambda: list(_PEOPLE),
        min_length=1,
        description="whose changes are delivered: subscribers (user), account users (admin),"
        " API calls (api: includes this project's own writes)",
    )


def fired_at(value: str) -> str | None:
    """``fired_at`` (``2009-03-26 21:35:57``, UTC) in the form members' ``last_changed`` has."""
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).isoformat()


def member_record(kind: str, data: dict[str, Any], changed: str | None) -> Record:
    """A subscribe, unsubscribe, profile or cleaned delivery's member, as members read."""
    email = data.get("email")
    if not isinstance(email, str) or not email.strip():
        msg = f"the {kind} delivery has no data[email]"
        raise MalformedDelivery(msg)
    record: Record = {"id": subscriber_hash(email), "email_address": email.strip()}
    if isinstance(data.get("id"), str):
        record["unique_email_id"] = data["id"]
    web_id = data.get("web_id")
    if isinstance(web_id, str) and web_id.isdigit():
        record["web_id"] = int(web_id)
    status = _STATUS.get(kind)
    if kind == "unsubscribe" and data.get("action") == "delete":
        status = "archived"
    if status:
        record["status"] = status
    merges = data.get("merges")
    if isinstance(merges, dict):
        record["merge_fields"] = {k: v for k, v in merges.items() if k not in _NOT_MERGE_FIELDS}
    record |= {k: data[k] for k in _SAME_NAME if isinstance(data.get(k), str)}
    if changed:
        record["last_changed"] = changed
    return record


def new_email_record(data: dict[str, Any], changed: str | None) -> Record:
    """An upemail delivery's member, under its new address."""
    new, old = data.get("new_email"), data.get("old_email")
    if not isinstance(new, str) or not new.strip():
        msg = "the upemail delivery has no data[new_email]"
        raise MalformedDelivery(msg)
    record: Record = {"id": subscriber_hash(new), "email_address": new.strip()}
    if isinstance(old, str):
        record["previous_email_address"] = old
    if isinstance(data.get("list_id"), str):
        record["list_id"] = data["list_id"]
    if changed:
        record["last_changed"] = changed
    return record


class MailchimpWebhook(WebhookSource):
    """Audience changes from Mailchimp's list webhooks."""

    name: ClassVar[str] = "mailchimp.webhook"
    description: ClassVar[str] = "audience member changes from Mailchimp webhooks (connector serve)"
    Settings: ClassVar[type[BaseModel]] = MailchimpWebhookSettings
    validation_methods: ClassVar[frozenset[str]] = frozenset({"GET"})
    settings: MailchimpWebhookSettings

    def verify(self, delivery: Delivery) -> None:
        secret = self.signing_secret("`connector webhooks register` makes one")
        check_url_secret(delivery, "secret", secret, "Mailchimp")

    def answer_validation(self, delivery: Delivery) -> tuple[int, str]:
        try:
            self.verify(delivery)
        except WebhookRejected as rejected:
            return 401, str(rejected)
        return 200, ""

    def events(self, delivery: Delivery) -> list[Event]:
        try:
            form = php_form.decode(delivery.body)
        except ValueError as error:
            msg = f"the body is not a form Mailchimp sends: {error}"
            raise MalformedDelivery(msg) from None
        kind, data = form.get("type"), form.get("data")
        if not isinstance(kind, str) or not kind or not isinstance(data, dict):
            msg = "the body has no type and data[...] fields"
            raise MalformedDelivery(msg)
        changed = fired_at(str(form.get("fired_at") or ""))
        extra = {k: data[k] for k in _EXTRA if k in data}
        if kind == "upemail":
            record = new_email_record(data, changed)
            extra["previous_id"] = subscriber_hash(str(data.get("old_email") or ""))
        elif kind in _STATUS or kind == "profile":
            record = member_record(kind, data, changed)
        else:
            record = {**data, "fired_at": changed}
            return [Event(kind, f"{kind}:{data.get('id', '')}", record, occurred_at=changed)]
        return [Event(kind, str(record["id"]), record, occurred_at=changed, extra=extra)]

    def pair_seen(self, record: Mapping[str, Any]) -> Seen | None:
        # A member event's record has the members source's fields (a campaign's is no member).
        return member_seen(record) if record.get("email_address") else None

    def refetch(self, event: Event) -> Record | None:
        if event.type not in EVENT_TYPES or event.type == "campaign":
            return event.record
        try:
            member = call(
                self._api().get_list_member,
                self.settings.list_id,
                event.key,
                exclude_fields=["_links"],  # as the members source reads members
            )
        except MailchimpRejected as error:
            if error.status == 404:
                return None
            raise
        return dict(member) if isinstance(member, dict) else None

    # --- subscriptions -------------------------------------------------------------------------

    def subscribe(self, url: str) -> Subscription:
        secret = self.url_secret()
        wanted = self.settings.events or list(EVENT_TYPES)
        body = {
            "url": with_query(url, secret=secret),
            "events": {kind: kind in wanted for kind in EVENT_TYPES},
            "sources": {who: who in self.settings.sources for who in ("user", "admin", "api")},
        }
        created = call_on_list(self.settings.list_id, self._api().create_list_webhook, body)
        return _subscription(created, secret)

    def subscriptions(self) -> list[Subscription]:
        found = call_on_list(self.settings.list_id, self._api().get_list_webhooks)
        hooks = found.get("webhooks") if isinstance(found, dict) else None
        return [_subscription(hook) for hook in hooks or []]

    def unsubscribe(self, subscription_id: str) -> None:
        try:
            call(self._api().delete_list_webhook, self.settings.list_id, subscription_id)
        except MailchimpRejected as error:
            if error.status == 404:
                msg = f"Mailchimp has no webhook {subscription_id} on audience"
                msg += f" {self.settings.list_id}"
                raise ConnectorError(msg) from None
            raise

    def _api(self) -> ListsApi:
        return lists_api(self.settings, self.context)


def _subscription(hook: Any, secret: str | None = None) -> Subscription:
    if not isinstance(hook, dict) or not hook.get("id"):
        msg = f"Mailchimp answered a webhook request without its id: {str(hook)[:200]}"
        raise ConnectorError(msg)
    events = hook.get("events")
    events = events if isinstance(events, dict) else {}
    url = str(hook.get("url") or "")
    shown = masked(url)  # never print the secret
    return Subscription(
        str(hook["id"]), shown, [k for k in EVENT_TYPES if events.get(k) is True], secret
    )
