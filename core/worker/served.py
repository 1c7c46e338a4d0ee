"""The webhook recipes a worker serves: through ``connector serve``'s server, shared with the
other workers (each drains the recipes' inbox with ``FOR UPDATE SKIP LOCKED`` claims in a
Postgres state database, in order per key), or, with ``--once``, their inboxes drained once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pluggy

from core.recipe import Recipe
from core.serve.drain import Drainer
from core.serve.metrics import Metrics
from core.state import inbox_of, open_state

_DONE = "connector_webhook_events_processed_total"
_FAILED = "connector_webhook_events_failed_total"


def drain_due(
    recipe: Recipe, location: str | Path, pm: pluggy.PluginManager | None
) -> tuple[int, int]:
    """Process ``recipe``'s inbox events that are due now; (synced, failed and kept)."""
    metrics = Metrics()
    drainer = Drainer(recipe, functools.partial(open_state, location), metrics, pm=pm)
    store = open_state(location)
    try:
        inbox = inbox_of(store)
        while drainer.drain_once(store, inbox):
            pass
    finally:
        store.close()
    return metrics.value(_DONE, recipe.name), metrics.value(_FAILED, recipe.name)


def serve(
    recipes: list[Recipe],
    location: Callable[[Recipe], str | Path],
    pm: pluggy.PluginManager | None,
    host: str,
    port: int,
    announce: Callable[[str], None],
) -> None:
    """Serve ``recipes``' webhook routes until SIGTERM, as ``connector serve`` does."""
    from core.serve.server import WebhookServer, bind

    server = WebhookServer(recipes, location, pm=pm)
    with bind(host, port) as sock:
        server.run(sock, announce)
