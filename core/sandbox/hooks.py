"""The sandbox's webhook recipes: ``connector serve`` in this process, an event, what travelled.

A webhook recipe has nothing ``connector run`` can read, so the sandbox serves it as a user
would: ``connector serve``'s server on a free loopback port (on a thread of this process), the
recipe subscribed on its service's emulator by ``connector webhooks register``'s own code (a
service with no API for it, like Donorbox, through the emulator's stand-in for its dashboard),
and the secret the subscription signs with set for the server. The server runs while the other
recipes run, so what they cause (Virtuous's nightly import making contacts) is delivered too.
A webhook recipe that received nothing by then gets one event: its emulator makes a change the
service announces (:meth:`~core.sandbox.SandboxEmulator.provoke`). The sandbox then waits for
the inbox to drain and prints each event, its record's key, where it went, and the recipe's
outcomes (its webhooks' and its reconciling poll's).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.cli import ExitCode, Session
from core.errors import RecipeError
from core.outcomes import Outcome
from core.sandbox.fleet import Served
from core.sandbox.workspace import environment_set

if TYPE_CHECKING:
    from core.recipe import Recipe
    from core.serve.server import Live
    from core.state import InboxEvent

#: How long the sandbox waits for a recipe's events to arrive and leave the inbox.
SETTLE_SECONDS = 30.0
#: Deliveries a change causes arrive within this long of it, on loopback.
_QUIET_SECONDS = 0.5

_RECEIVED = "connector_webhook_events_received_total"
_POLLS = "connector_reconcile_runs_total"


def takes_webhooks(session: Session, copy: Path) -> bool:
    """Whether the recipe at ``copy`` has a webhook source (one that does not load is run, so
    ``connector run`` says what is wrong with it)."""
    from core.webhooks import WebhookSource

    try:
        recipe = session.recipe(copy, placeholders=True)
    except RecipeError:
        return False
    return issubclass(recipe.source_class, WebhookSource)


@dataclass(frozen=True)
class HookRecipe:
    """A webhook recipe the sandbox serves: as the user named it, and its copy."""

    original: Path
    copy: Path


@contextmanager
def serving_hooks(
    session: Session, served: Sequence[Served], hooks: Sequence[HookRecipe], state: str
) -> Iterator[Hooks]:
    """``connector serve`` of ``hooks`` on loopback, each subscribed on its emulator, while the
    block runs; stopped as SIGTERM stops it on leaving."""
    from core.serve.server import WebhookServer, bind
    from core.state.lock import run_lock

    sock = bind("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    with sock, ExitStack() as held:
        for hook in hooks:
            variable, secret = _subscribe(session, served, hook, port, state)
            held.enter_context(environment_set({variable: secret}))
        recipes = [session.recipe(hook.copy) for hook in hooks]
        for recipe in recipes:
            held.enter_context(run_lock(recipe.path, recipe.name))
        names = " ".join(str(hook.original) for hook in hooks)
        click.echo(f"\n$ connector serve {names} --port {port}   (in the background)")
        server = WebhookServer(recipes, lambda recipe: state, pm=session.pm)
        with server.in_background(sock) as live:
            yield Hooks(live, served, recipes, state)


def _subscribe(
    session: Session, served: Sequence[Served], hook: HookRecipe, port: int, state: str
) -> tuple[str, str]:
    """Subscribe ``hook`` on its emulator; the secret variable and the value serve needs."""
    from core.webhook_commands import register_webhook, webhook_recipe
    from core.webhooks import WebhookSource

    recipe, variable, secret, _ = webhook_recipe(session, hook.copy)
    url = f"http://127.0.0.1:{port}/hooks/{recipe.name}"
    source = recipe.source_class
    assert issubclass(source, WebhookSource)  # the sandbox serves only these
    if source.subscribe is not WebhookSource.subscribe:
        click.echo(f"\n$ connector webhooks register {hook.original} --url {url}")
        registered = register_webhook(session, hook.copy, url, state)
        click.echo(registered.line)
        click.echo(f"its secret is in {registered.variable} for connector serve")
        return registered.variable, registered.secret
    emulator = _emulator_of(served, recipe)
    if emulator is None:
        msg = f"{recipe.source_class.name} subscribes in its dashboard, and no emulator of it runs"
        raise RecipeError(msg, where=str(hook.original))
    emulator.control("POST", "webhooks", {"url": url, "secret": secret})
    click.echo(
        f"\n{emulator.name} has no API for webhooks: the sandbox adds {url} in its dashboard"
        f" (the emulator's), signed with the secret in {variable}"
    )
    return variable, secret


def _emulator_of(served: Sequence[Served], recipe: Recipe) -> Served | None:
    """The emulator of the recipe's source's service (``stripe.webhook``: stripe)."""
    service = recipe.source_class.name.partition(".")[0]
    return next((one for one in served if one.name == service), None)


class Hooks:
    """The webhook recipes being served, as the sandbox shows them."""

    def __init__(
        self, live: Live, served: Sequence[Served], recipes: Sequence[Recipe], state: str
    ) -> None:
        self.live = live
        self.served = served
        self.recipes = recipes
        self.state = state

    def wait_drained(self) -> None:
        """Wait until each recipe's first poll ran and its inbox is empty."""
        for recipe in self.recipes:
            self._settled(recipe.name, SETTLE_SECONDS, events=False)

    def show(self) -> int:
        """Provoke an event for each recipe that received none, wait for the inboxes to drain,
        print what travelled; the exit code (1 when events still wait)."""
        codes = [self._travelled(recipe) for recipe in self.recipes]
        return max(codes, default=ExitCode.OK)

    def _travelled(self, recipe: Recipe) -> int:
        if not self._settled(recipe.name, 1.0):
            emulator = _emulator_of(self.served, recipe)
            said = emulator.emulator.provoke(emulator.url) if emulator else None
            if said:
                click.echo(f"\n{emulator.name if emulator else ''}: {said}")
            self._settled(recipe.name, SETTLE_SECONDS)
        return self._print(recipe)

    def _settled(self, name: str, grace: float, *, events: bool = True) -> bool:
        """Wait until ``name`` received events (unless not ``events``), drained its inbox, ran
        its first poll and nothing more arrived for a moment (or ``grace`` passed); whether it
        received any."""
        metrics = self.live.metrics
        deadline = time.monotonic() + grace
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            received = metrics.value(_RECEIVED, name)
            if received != seen:
                seen, quiet_since = received, time.monotonic()
            polled = self._polls(name) > 0 or self._recipe(name).model.reconcile is None
            quiet = time.monotonic() - quiet_since >= _QUIET_SECONDS
            if (received or not events) and polled and quiet and not self._depth(name):
                return True
            time.sleep(0.05)
        return metrics.value(_RECEIVED, name) > 0

    def _polls(self, name: str) -> int:
        metrics = self.live.metrics
        return metrics.value(_POLLS, name, result="ok") + metrics.value(
            _POLLS, name, result="failed"
        )

    def _depth(self, name: str) -> int:
        inbox = self.live.served[name].inbox
        depth = inbox.submit(lambda store: store.inbox_depth()).result()
        return depth.get((name, "pending"), 0)

    def _recipe(self, name: str) -> Recipe:
        return next(recipe for recipe in self.recipes if recipe.name == name)

    def _print(self, recipe: Recipe) -> int:
        events = self._events(recipe.name)
        waiting = [event for event in events if event.status != "done"]
        synced = len(events) - len(waiting)
        click.echo(
            f"\n{recipe.name}, through connector serve: {len(events)} event(s) received,"
            f" {synced} synced, {len(waiting)} waiting"
        )
        for line in self._event_lines(recipe, events):
            click.echo(f"  {line}")
        metrics = self.live.metrics
        if recipe.reconcile_class is not None:
            click.echo(f"  its reconciling poll ({recipe.reconcile_class.name}) ran as it started")
        counts = {
            outcome: metrics.value("connector_records_total", recipe.name, outcome=str(outcome))
            for outcome in Outcome
        }
        shown = ", ".join(f"{outcome} {n}" for outcome, n in counts.items() if n)
        click.echo(f"  outcomes (its webhooks and its poll): {shown or 'none'}")
        return ExitCode.RECORDS_FAILED if waiting or not events else ExitCode.OK

    def _events(self, name: str) -> list[InboxEvent]:
        inbox = self.live.served[name].inbox
        statuses = ("done", "pending", "failed")
        return inbox.submit(lambda store: store.inbox_events(name, statuses)).result()

    def _event_lines(self, recipe: Recipe, events: Sequence[InboxEvent]) -> Iterator[str]:
        """One line a record: the events that arrived for it, and where it is now."""
        from core.state import open_state

        store = open_state(self.state)
        try:
            ledger = store.ledger(recipe.name, [event.key for event in events])
        finally:
            store.close()
        by_key: dict[str, list[InboxEvent]] = {}
        for event in events:
            by_key.setdefault(event.key, []).append(event)
        width = max((len(key) for key in by_key), default=0)
        for key, arrived in by_key.items():
            types = Counter(event.type for event in arrived)
            said = ", ".join(t if n == 1 else f"{t} x{n}" for t, n in types.items())
            entry = ledger.get(key)
            waits = [event for event in arrived if event.status != "done"]
            if waits:
                where = f"waits in the inbox: {waits[0].last_error or 'not tried yet'}"
            elif entry is None:
                where = "not written (the recipe's filter left it out)"
            else:
                where = f"in {recipe.sink_class.name} as {entry.sink_key}"
            yield f"{key:<{width}}  {said} -> {where}"
