"""``connector state copy RECIPE... --to PATH_OR_URL``: move recipes' state to another state
database (one machine's SQLite file to the Postgres many machines share, or back), so a run
there sends nothing already sent. The work is :func:`core.state.copy.copy_state`'s."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import click

from core.cli import Session, pass_session, recipes_argument, reports_errors, state_locations
from core.errors import RecipeError, RunInProgressError


@click.command("copy")
@recipes_argument()
@click.option(
    "--to",
    "target",
    required=True,
    metavar="PATH_OR_URL",
    help="the state database to copy into: a path, or postgresql://USER@HOST:PORT/DB",
)
@click.option(
    "--from",
    "source",
    metavar="PATH_OR_URL",
    help="the state database to copy from (default: where run looks: CONNECTOR_STATE_URL, or"
    " .connector/state.db beside each recipe)",
)
@click.option("--replace", is_flag=True, help="replace the state the target holds of a recipe")
@click.option("--wait", is_flag=True, help="wait for a run of a recipe going on either end")
@click.option("--json", "as_json", is_flag=True, help="print what was copied as JSON")
@pass_session
@reports_errors
def state_copy(
    session: Session,
    recipe_paths: tuple[Path, ...],
    target: str,
    source: str | None,
    replace: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Copy everything RECIPE... keep (cursor, ledger, dead letters, two-way views, webhook
    inbox, run reports) to another state database, each recipe in one transaction there.

    Refused, copying nothing, while a run of a recipe is going, when the source holds records
    in flight or the target already holds state of a recipe (unless --replace)."""
    from core.state.copy import Named, copy_state
    from core.state.lock import run_lock

    recipes = [session.recipe(path, placeholders=True) for path in recipe_paths]
    where = state_locations(source)
    sources = {str(where(recipe)) for recipe in recipes}
    if len(sources) > 1:
        msg = "the recipes keep their state in different places: copy each with its own --from"
        raise RecipeError(msg)
    named = [Named(r.name, str(path)) for r, path in zip(recipes, recipe_paths, strict=True)]
    with ExitStack() as stack:
        for recipe in recipes:  # the recipe's own lock, wherever its state lives
            try:
                stack.enter_context(run_lock(recipe.path, recipe.name, wait=wait))
            except RunInProgressError as error:
                msg = f"cannot copy {recipe.name}: {error}"
                raise RecipeError(msg) from None
        copied = copy_state(named, sources.pop(), target, replace=replace, wait=wait)
    if as_json:
        click.echo(json.dumps({c.recipe: c.rows for c in copied}, indent=2))
        return
    for c in copied:
        rows = ", ".join(f"{kind} {count}" for kind, count in c.rows.items() if count)
        click.echo(f"copied {c.recipe}: {rows}")
