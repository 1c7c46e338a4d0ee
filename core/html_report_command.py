"""``connector report RECIPE --html FILE``: a page to look at, made from the state store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from core.cli import Session, pass_session, recipe_argument, reports_errors, state_option
from core.errors import FatalError


@click.command()
@recipe_argument
@click.option(
    "--html",
    "html_path",
    required=True,
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="write the report to FILE: one page, nothing fetched when it opens",
)
@state_option
@pass_session
@reports_errors
def report(session: Session, recipe_path: Path, html_path: Path, state_path: str | None) -> None:
    """Write a page of RECIPE's runs, money, dead letters and what waits in the sink, from
    its state store alone (no service is asked, no secret is needed)."""
    from core.html_report import render
    from core.html_report_data import gather

    recipe = session.recipe(recipe_path, placeholders=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with session.state(recipe, state_path) as store:
        data = gather(recipe.name, recipe.source_class.name, recipe.sink_class, store, now)
    try:
        html_path.write_text(render(data), encoding="utf-8")
    except OSError as error:
        msg = f"cannot write the report to {html_path}: {error.strerror or error}"
        raise FatalError(msg) from error
    click.echo(
        f"{html_path}: {len(data.runs):,} run(s), {data.dead_letter_count:,} dead letter(s),"
        f" {data.pending_count:,} pending"
    )
