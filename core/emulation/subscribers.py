"""Webhooks of a service whose subscriptions are made in its dashboard, as an emulator keeps them.

Donorbox's custom webhooks, for one, have no API: a person adds the URL (and copies a signing
secret) in the dashboard. The emulator stands in for that dashboard with a control-plane route,
and POSTs each change it makes to the subscribers of its event through a
:class:`~core.emulation.WebhookDeliverer`::

    subscribers = Subscribers(WebhookDeliverer("Donorbox"), sign=donorbox_signature)
    routes = [*api_routes, *subscriber_routes(lambda request: subscribers)]
    ...
    subscribers.announce("donation.created", body, {"Content-Type": "application/json"})

Control plane: ``POST /_emulator/webhooks`` (``{"url", "events": [...], "secret"}``; no events:
every event), ``GET /_emulator/webhooks``, ``GET /_emulator/deliveries`` (every attempt, oldest
first, with the status the receiver answered).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.emulation.faults import CONTROL_PREFIX
from core.emulation.responses import json_response
from core.emulation.webhooks import WebhookDeliverer, attempts_json


@dataclass(frozen=True)
class Subscriber:
    """One webhook: where it delivers, which events (none named: all of them), its secret."""

    url: str
    events: frozenset[str] = frozenset()
    secret: str | None = None

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


#: The headers that sign ``body`` for one subscriber, made again at each attempt.
Sign = Callable[[Subscriber, bytes], Mapping[str, str]]


class Subscribers:
    """The webhooks an emulated account has, and the deliverer that sends to them."""

    def __init__(self, deliverer: WebhookDeliverer, sign: Sign | None = None) -> None:
        self.deliverer = deliverer
        self._sign = sign
        self._items: list[Subscriber] = []

    def add(self, url: str, events: Iterable[str] = (), secret: str | None = None) -> Subscriber:
        subscriber = Subscriber(url, frozenset(events), secret)
        self._items.append(subscriber)
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber`` (what is queued for it still goes)."""
        self._items = [s for s in self._items if s is not subscriber]

    def all(self) -> list[Subscriber]:
        return list(self._items)

    def announce(self, event: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Queue ``body`` for every subscriber of ``event``; how many there were."""
        wanting = [s for s in self._items if s.wants(event)]
        for subscriber in wanting:
            sign = functools.partial(self._sign, subscriber) if self._sign else None
            self.deliverer.send(subscriber.url, body, headers, event, sign)
        return len(wanting)

    def clear(self) -> None:
        """Forget every webhook and every queued delivery (an emulator's reset)."""
        self._items.clear()
        self.deliverer.clear()


def subscriber_routes(of: Callable[[Request], Subscribers]) -> list[Route]:
    """The control-plane routes standing in for the dashboard, for the :class:`Subscribers`
    that ``of(request)`` finds."""

    async def webhooks(request: Request) -> Response:
        subscribers = of(request)
        if request.method == "POST":
            body = await request.json()
            made = subscribers.add(str(body["url"]), body.get("events") or (), body.get("secret"))
            return json_response(_shown(made), 201)
        return json_response([_shown(s) for s in subscribers.all()])

    async def deliveries(request: Request) -> Response:
        return json_response(attempts_json(of(request).deliverer))

    return [
        Route(f"{CONTROL_PREFIX}webhooks", webhooks, methods=["GET", "POST"]),
        Route(f"{CONTROL_PREFIX}deliveries", deliveries),
    ]


def _shown(subscriber: Subscriber) -> dict[str, object]:
    return {"url": subscriber.url, "events": sorted(subscriber.events), "secret": subscriber.secret}
