"""Serving: the recipes' routes under uvicorn, their inbox workers, and a graceful stop.

On SIGTERM (or Ctrl-C) the server stops accepting connections and answers the requests it has
(uvicorn's graceful shutdown); every event it acknowledged is already committed. Each worker then
finishes the batch in hand and stops; the rest of the inbox waits for the next start, which
drains it before anything else (a killed server's claims are released first when it ran on this
machine; another machine's run out: see :mod:`core.serve.claims`).
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from core.context import Context
from core.errors import FatalError
from core.recipe import Recipe
from core.serve.app import Served, build_app
from core.serve.claims import gone
from core.serve.drain import Drainer, DrainSettings
from core.serve.metrics import Metrics
from core.serve.store_thread import StoreThread
from core.state import InboxStore, StateStore, open_state
from core.stop_signals import stop_signals_handled
from core.webhooks import WebhookSource

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)

# Requests still open this long after SIGTERM are cut; their events were not acknowledged.
_GRACE_SECONDS = 10


@dataclass
class Live:
    """A server's recipes, counters and uvicorn server, as :meth:`WebhookServer.in_background`
    hands them over."""

    served: dict[str, Served]
    metrics: Metrics
    server: uvicorn.Server


class WebhookServer:
    """Everything ``connector serve`` runs, for recipes whose state lives at ``location(r)``."""

    def __init__(
        self,
        recipes: list[Recipe],
        location: Callable[[Recipe], str | Path],
        *,
        pm: pluggy.PluginManager | None = None,
        drain: DrainSettings | None = None,
    ) -> None:
        self.recipes = recipes
        self.location = location
        self.pm = pm
        self.drain = drain or DrainSettings()
        self.metrics = Metrics()

    def run(self, sock: socket.socket, announce: Callable[[str], None]) -> None:
        """Serve on ``sock`` until SIGTERM or SIGINT, then stop gracefully."""
        with ExitStack() as stack:
            live = self._started(stack)
            host, port = sock.getsockname()[:2]
            host = f"[{host}]" if ":" in host else host
            announce(f"listening on http://{host}:{port}: " + ", ".join(_routes(live.served)))
            with _signals_noted(announce):
                live.server.run(sockets=[sock])

    @contextmanager
    def in_background(self, sock: socket.socket, timeout: float = 30) -> Iterator[Live]:
        """Serve on ``sock`` from a thread of this process (``connector sandbox``) while the
        block runs; then stop as on SIGTERM."""
        with ExitStack() as stack:
            live = self._started(stack)
            thread = threading.Thread(
                target=live.server.run, kwargs={"sockets": [sock]}, name="serve", daemon=True
            )
            thread.start()
            deadline = time.monotonic() + timeout
            while not live.server.started and thread.is_alive():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            try:
                yield live
            finally:
                live.server.should_exit = True
                thread.join()

    def _started(self, stack: ExitStack) -> Live:
        """The app over the recipes, its uvicorn server (not serving yet) and the workers
        (draining already; stopped when ``stack`` closes, after the server)."""
        import uvicorn

        served = self._serve(stack)
        drainers = [self._drainer(entry) for entry in served.values()]
        states = [entry.source.context.state for entry in served.values()]
        app = build_app(served, self.metrics, reported_budgets(states))
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_GRACE_SECONDS,
        )
        for drainer in drainers:
            drainer.start()
            stack.callback(drainer.stop)
        return Live(served, self.metrics, uvicorn.Server(config))

    def _serve(self, stack: ExitStack) -> dict[str, Served]:
        """Each recipe's source, inbox thread and wake-up, with the stores they use."""
        inboxes: dict[str, StoreThread] = {}
        stores: dict[str, StateStore] = {}
        served: dict[str, Served] = {}
        for recipe in self.recipes:
            where = str(self.location(recipe))
            if where not in inboxes:
                inboxes[where] = StoreThread(functools.partial(open_state, where))
                stack.callback(inboxes[where].close)
                stores[where] = open_state(where)
                stack.callback(stores[where].close)
            # Claims no live process holds are taken again at once; other servers' and
            # workers' (on this machine or another) stay theirs.
            inboxes[where].submit(_releasing(recipe.name)).result()
            context = Context(recipe.name, recipe.base_dir, stores[where])
            stack.callback(context.close)
            source = recipe.source_class(recipe.source_settings, context)
            assert isinstance(source, WebhookSource)
            stack.callback(source.close)
            served[recipe.name] = Served(recipe, source, inboxes[where], threading.Event())
        return served

    def _drainer(self, entry: Served) -> Drainer:
        where = str(self.location(entry.recipe))
        return Drainer(
            entry.recipe,
            lambda: open_state(where),
            self.metrics,
            pm=self.pm,
            settings=self.drain,
            wake=entry.wake,
        )


def reported_budgets(states: list[StateStore]) -> Callable[[], dict[str, int]]:
    """What ``/metrics`` shows of the rate budgets the recipes' clients draw from: the
    requests each has left by the service's last report (a store that keeps none shows none)."""
    from core.http import store_for

    stores = {id(store): store for store in map(store_for, states)}

    def budgets() -> dict[str, int]:
        left: dict[str, int] = {}
        for store in stores.values():
            reported = getattr(store, "reported", None)
            if reported is not None:
                left.update(reported(time.time()))
        return left

    return budgets


def _releasing(recipe: str) -> Callable[[InboxStore], int]:
    """Free the claims no live process holds: run out, or a killed server's on this machine
    (other servers' claims, here or on other machines sharing the inbox, stay theirs)."""

    def release(inbox: InboxStore) -> int:
        return inbox.inbox_release(recipe, gone)

    return release


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free port, which the announcement then names);
    :class:`FatalError` saying why when ``host:port`` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a small answer waits for the client's delayed ACK (40 ms on Linux).
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as error:
        raise _cannot_listen(host, port, error) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise _cannot_listen(host, port, error) from None
    sock.set_inheritable(True)
    return sock


def _cannot_listen(host: str, port: int, error: OSError) -> FatalError:
    return FatalError(f"cannot listen on {host}:{port}: {error.strerror or error}")


def _routes(served: dict[str, Served]) -> Iterator[str]:
    for name, entry in served.items():
        extra = "".join(f"|{m}" for m in sorted(entry.source.validation_methods))
        yield f"POST{extra} /hooks/{name}"


def _signals_noted(announce: Callable[[str], None]) -> AbstractContextManager[None]:
    """While uvicorn serves it handles SIGTERM and SIGINT (a graceful shutdown), then raises
    them again: these handlers take them then, so the workers can stop in turn."""
    return stop_signals_handled(
        lambda sig: announce(f"{sig.name}: stopping; what was acknowledged is kept")
    )
