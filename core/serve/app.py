"""The HTTP side of ``connector serve``: each delivery is verified, committed, then answered.

``POST /hooks/<recipe name>`` takes a service's delivery for that recipe. In order: a body over
the source's ``max_body_bytes`` is refused with 413 before it is read whole; the source verifies
the signature (401, nothing stored); it splits the body into events (400 when it cannot);
events the recipe selects are committed to the inbox, and only then is the answer 200. A commit
that fails answers 503, so the service delivers again. ``GET`` (or another method a service
uses to check a URL) is verified the same way, then answered by the source.

``GET /healthz`` says whether the server takes deliveries; ``GET /metrics`` is Prometheus text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from core.http.redact import redact_text
from core.recipe import Recipe
from core.serve.metrics import Metrics
from core.serve.store_thread import StoreThread
from core.state import NewEvent
from core.webhooks import (
    Delivery,
    Event,
    MalformedDelivery,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
)

logger = logging.getLogger(__name__)

_REJECTED = "connector_webhook_deliveries_rejected_total"


@dataclass
class Served:
    """A recipe the server takes deliveries for."""

    recipe: Recipe
    source: WebhookSource
    inbox: StoreThread
    #: set when events were committed, so the recipe's worker drains them at once
    wake: threading.Event

    @property
    def max_body_bytes(self) -> int:
        default = WebhookSettings.model_fields["max_body_bytes"].default
        return int(getattr(self.source.settings, "max_body_bytes", default))


class TooLarge(Exception):
    """The body is over the recipe's limit."""


def build_app(
    served: Mapping[str, Served],
    metrics: Metrics,
    budgets: Callable[[], dict[str, int]] = dict,
) -> Starlette:
    """The server's routes over the recipes in ``served`` (by recipe name)."""

    async def hook(request: Request) -> Response:
        target = served.get(request.path_params["name"])
        if target is None:
            known = ", ".join(f"/hooks/{name}" for name in served)
            return PlainTextResponse(f"no recipe here; served: {known}\n", status_code=404)
        name = target.recipe.name
        try:
            delivery = await _delivery(request, target.max_body_bytes)
        except TooLarge:
            metrics.count(_REJECTED, name, reason="too_large")
            return PlainTextResponse("body too large\n", status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        return await _take(target, delivery, metrics)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "recipes": sorted(served)})

    async def metrics_text(request: Request) -> Response:
        depth: dict[tuple[str, str], int] = {}
        for inbox in {id(s.inbox): s.inbox for s in served.values()}.values():
            depth.update(await inbox.call(lambda store: store.inbox_depth()))
        text = metrics.render(served, depth, budgets())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    methods = sorted({"POST"} | {m for s in served.values() for m in s.source.validation_methods})
    routes = [
        Route("/hooks/{name}", hook, methods=methods),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _delivery(request: Request, limit: int) -> Delivery:
    """The request as a :class:`Delivery`, read no further than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return Delivery(
        method=request.method,
        headers={key.lower(): value for key, value in request.headers.items()},
        query=dict(request.query_params),
        body=b"".join(chunks),
        received_at=time.time(),
    )


async def _take(target: Served, delivery: Delivery, metrics: Metrics) -> Response:
    """Verify, read, commit, answer: in this order."""
    source, name = target.source, target.recipe.name
    try:
        source.verify(delivery)
    except WebhookRejected as error:
        metrics.count(_REJECTED, name, reason="signature")
        logger.warning("%s: delivery refused: %s", name, error)
        return PlainTextResponse("signature does not verify\n", status_code=401)
    if delivery.method != "POST":
        status, body = source.answer_validation(delivery)
        return PlainTextResponse(body, status_code=status)
    try:
        events = source.events(delivery)
    except MalformedDelivery as error:
        metrics.count(_REJECTED, name, reason="malformed")
        logger.warning("%s: delivery cannot be read: %s", name, error)
        return PlainTextResponse(f"malformed delivery: {redact_text(str(error))}\n", 400)
    selected = [event for event in events if source.selects(event)]
    if selected:
        try:
            await target.inbox.enqueue([_new(name, event) for event in selected])
        except Exception as error:
            logger.error("%s: could not commit %d event(s): %s", name, len(selected), error)
            return PlainTextResponse("not stored; deliver again\n", status_code=503)
        target.wake.set()
    metrics.count("connector_webhook_events_received_total", name, len(events))
    if ignored := len(events) - len(selected):
        metrics.count("connector_webhook_events_ignored_total", name, ignored)
    return PlainTextResponse("ok\n")


def _new(recipe: str, event: Event) -> NewEvent:
    return NewEvent(recipe, event.type, event.key, event.record, event.id, event.occurred_at)
