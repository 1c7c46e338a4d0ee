"""``connector plan RECIPE``: what a run would do, found without writing anything.

The same engine as ``connector run --dry-run``: the runner reads, maps and validates every
record, consults the ledger (unchanged, updated, needs review), and asks the sink what it would
answer (:meth:`core.sink.Sink.preview`: look-ups, never a write), so the counts it prints are the
ones the real run reports. ``--show N`` prints the first N payloads it would send.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from core.cli import (
    ExitCode,
    Session,
    pass_session,
    polled,
    progress_wanted,
    recipe_argument,
    redact_text,
    reports_errors,
    state_option,
)
from core.hints import hint_target


@click.command()
@recipe_argument
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="print the first N payloads it would send",
)
@click.option("--limit", type=click.IntRange(min=1), help="stop after N source records")
@click.option("--json", "as_json", is_flag=True, help="print one JSON report on stdout")
@state_option
@pass_session
@reports_errors
def plan(
    session: Session,
    recipe_path: Path,
    show: int,
    limit: int | None,
    as_json: bool,
    state_path: str | None,
) -> None:
    """Show what running RECIPE would write, update, leave unchanged or refuse; write nothing.

    Exits 1 when records would not go through (invalid, needs review), as the run would."""
    from core import output
    from core.runner import Runner

    recipe = polled(session.recipe(recipe_path))  # a webhook recipe: its reconcile:, as run
    with session.state(recipe, state_path) as state:
        runner = Runner(recipe, state, dry_run=True, limit=limit, pm=session.pm, show=show)
        with output.progress(runner, enabled=progress_wanted(as_json)):
            report = runner.run()
    if as_json:
        body: dict[str, Any] = {**report.to_dict(), "payloads": runner.payloads}
        click.echo(redact_text(json.dumps(body, indent=2, default=str)))
    else:
        output.print_report(report, hint_target(recipe_path, state_path))
        output.print_payloads(runner.payloads)
    sys.exit(ExitCode.OK if report.ok else ExitCode.RECORDS_FAILED)
