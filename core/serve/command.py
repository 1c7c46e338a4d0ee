"""``connector serve RECIPE...``: take webhook deliveries for the recipes and sync them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from core.cli import (
    Session,
    pass_session,
    recipes_argument,
    reports_errors,
    state_locations,
    state_option,
)
from core.errors import RecipeValidationError


@click.command()
@recipes_argument()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0: any free"
)
@state_option
@pass_session
@reports_errors
def serve(
    session: Session, recipe_paths: tuple[Path, ...], host: str, port: int, state_path: str | None
) -> None:
    """Take webhook deliveries for each RECIPE at POST /hooks/<recipe name>.

    Each verified event is committed to the inbox in the state store before it is acknowledged,
    then synced through the recipe's map and sink with the same ledger as `connector run`.
    SIGTERM stops it gracefully; the inbox waits for the next start.
    """
    from contextlib import ExitStack

    from core.serve.server import WebhookServer, bind
    from core.state.lock import run_lock
    from core.webhooks import WebhookSource

    recipes = [session.recipe(path) for path in recipe_paths]
    names: dict[str, Path] = {}
    for recipe in recipes:
        if not issubclass(recipe.source_class, WebhookSource):
            msg = (
                f"source {recipe.source_class.name} is polled; connector serve"
                " takes recipes whose source is a webhook source (connector run polls this one)"
            )
            raise RecipeValidationError(msg, where=recipe.located.where(("source", "use")))
        if recipe.name in names:
            msg = f"two recipes named {recipe.name!r} ({names[recipe.name]}, {recipe.path})"
            raise RecipeValidationError(msg)
        names[recipe.name] = recipe.path
    server = WebhookServer(recipes, state_locations(state_path), pm=session.pm)
    with ExitStack() as held:
        for recipe in recipes:
            held.enter_context(run_lock(recipe.path, recipe.name))
        with bind(host, port) as sock:
            server.run(sock, _announce)


def _announce(message: str) -> None:
    click.echo(f"connector serve: {message}", err=True)
    sys.stderr.flush()
