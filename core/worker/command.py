"""``connector worker RECIPE... | --dir DIR``: run recipes on the schedules they declare."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from core.cli import ExitCode, Session, pass_session, reports_errors, state_option
from core.errors import RecipeError, RecipeValidationError
from core.recipe import Recipe
from core.worker.scheduler import Ran


@click.command()
@click.argument(
    "recipe_paths",
    metavar="RECIPE...",
    nargs=-1,
    type=click.Path(path_type=Path, dir_okay=False),
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="run every recipe in DIR (*.yaml, *.yml) that has a schedule:",
)
@click.option("--once", is_flag=True, help="run what is due now, then exit (for cron, CronJobs)")
@click.option(
    "--poll",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="seconds between looks for due runs (a dead worker's run is taken over at a look)",
)
@state_option
@pass_session
@reports_errors
def worker(
    session: Session,
    recipe_paths: tuple[Path, ...],
    directory: Path | None,
    once: bool,
    poll: float,
    state_path: str | None,
) -> None:
    """Run each RECIPE (or every recipe in --dir) on the schedule it declares (schedule:
    "*/15 * * * *", in UTC).

    Any number of workers, on any number of machines, may run the same recipes: with a shared
    state database (CONNECTOR_STATE_URL=postgresql://...) each scheduled run happens once, and
    with CONNECTOR_RATE_URL=redis://... they share each service's rate budget. SIGTERM lets the
    run in hand finish, then stops.
    """
    from core.worker.scheduler import Scheduler

    recipes = _scheduled(session, recipe_paths, directory)
    location = state_path or os.environ.get("CONNECTOR_STATE_URL")
    scheduler = Scheduler(
        recipes,
        lambda recipe: location or recipe.base_dir / ".connector" / "state.db",
        pm=session.pm,
        on_run=_announce,
    )
    if once:
        ran = scheduler.run_due(time.time())
        sys.exit(_exit_code(ran))
    stop = threading.Event()
    names = ", ".join(f"{r.name} ({r.model.schedule})" for r in recipes)
    _say(f"running {names}; SIGTERM stops it")
    with _stopped_by_signals(stop):
        scheduler.run_forever(stop, poll)


def _scheduled(session: Session, paths: tuple[Path, ...], directory: Path | None) -> list[Recipe]:
    """The recipes to run: each named one (which must have a schedule), and those of
    ``directory`` that have one."""
    if not paths and directory is None:
        raise RecipeError(
            "connector worker: name the recipes to run, or a folder of them with --dir"
        )
    recipes = []
    for path in paths:
        recipe = session.recipe(path)
        if recipe.model.schedule is None:
            msg = (
                f'{path}: no schedule: to run it on; add one, e.g. schedule: "*/15 * * * *"'
                " (connector run runs it once)"
            )
            raise RecipeValidationError(msg)
        recipes.append(recipe)
    if directory is not None:
        found = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        recipes += [r for r in map(session.recipe, found) if r.model.schedule is not None]
    if not recipes:
        msg = f'{directory}: no recipe in it has a schedule: (e.g. schedule: "*/15 * * * *")'
        raise RecipeValidationError(msg)
    names: dict[str, Path] = {}
    for recipe in recipes:
        if names.setdefault(recipe.name, recipe.path) != recipe.path:
            msg = f"two recipes named {recipe.name!r} ({names[recipe.name]}, {recipe.path})"
            raise RecipeValidationError(msg)
    return recipes


def _announce(ran: Ran) -> None:
    due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ran.due))
    if ran.report is None:
        _say(f"{ran.recipe} (due {due}) stopped: {ran.error}")
        return
    counts = ", ".join(f"{n:,} {outcome}" for outcome, n in ran.report.counts.items() if n)
    _say(f"{ran.recipe} (due {due}): {counts or 'nothing to sync'}")


def _exit_code(ran: list[Ran]) -> int:
    if any(r.report is None for r in ran):
        return ExitCode.FATAL
    if any(r.report is not None and not r.report.ok for r in ran):
        return ExitCode.RECORDS_FAILED
    return ExitCode.OK


def _say(message: str) -> None:
    click.echo(f"connector worker: {message}", err=True)
    sys.stderr.flush()


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``: the run in hand finishes, then the worker exits."""

    def note(signum: int, frame: FrameType | None) -> None:
        _say(f"{signal.Signals(signum).name}: stopping after the run in hand")
        stop.set()

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
