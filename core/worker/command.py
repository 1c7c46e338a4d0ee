"""``connector worker RECIPE... | --dir DIR``: run recipes on the schedules they declare."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import click

from core.cli import (
    ExitCode,
    Session,
    pass_session,
    recipes_argument,
    reports_errors,
    state_locations,
    state_option,
)
from core.errors import RecipeError, RecipeValidationError
from core.recipe import Recipe
from core.stop_signals import stop_signals_handled
from core.worker.scheduler import Ran, Scheduler


@click.command()
@recipes_argument(required=False)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="every recipe in DIR (*.yaml, *.yml) that has a schedule: or a webhook source",
)
@click.option("--once", is_flag=True, help="run what is due now, then exit (for cron, CronJobs)")
@click.option(
    "--poll",
    metavar="SECONDS",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="seconds between looks for due runs (a dead worker's run is taken over at a look)",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="webhooks: address to listen on"
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="webhooks: port (0: any free)",
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
    host: str,
    port: int,
    state_path: str | None,
) -> None:
    """Run each RECIPE (or every recipe in --dir) on the schedule it declares (schedule:
    "*/15 * * * *", in UTC), and serve the webhook recipes' routes as connector serve does.

    Any number of workers, on any number of machines, may run the same recipes: with a shared
    state database (CONNECTOR_STATE_URL=postgresql://...) each scheduled run happens once and
    webhook events are drained once, in order per key; with CONNECTOR_RATE_URL=redis://... they
    share each service's rate budget. With --once, webhook recipes are not served: the events
    due in their inbox are synced. SIGTERM lets the run in hand finish, then stops.
    """
    scheduled, served = _recipes(session, recipe_paths, directory)
    location = state_locations(state_path)
    scheduler = Scheduler(scheduled, location, pm=session.pm, on_run=_announce)
    if once:
        now = time.time()
        ran = scheduler.run_due(now)
        drained, failed = _drain_once(served, location, session)
        if not ran and not drained:
            _say(_nothing_due(scheduler, now))  # so that a cron log shows the worker looked
        sys.exit(max(_exit_code(ran), ExitCode.RECORDS_FAILED if failed else ExitCode.OK))
    stop = threading.Event()
    if scheduled:
        names = ", ".join(f"{r.name} ({r.model.schedule})" for r in scheduled)
        _say(f"running {names}; SIGTERM stops it")
        for name, waiting in scheduler.retrying(time.time()).items():
            _say(f"{name} (due {_utc(waiting.due)}) {_retry(waiting.count, waiting.retry_at)}")
    if not served:
        with _stopped_by_signals(stop):
            scheduler.run_forever(stop, poll)
        return
    from core.worker.served import serve

    thread = threading.Thread(target=scheduler.run_forever, args=(stop, poll), name="schedule")
    if scheduled:
        thread.start()
    try:
        serve(served, location, session.pm, host, port, _say)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()


def _drain_once(
    served: list[Recipe], location: Callable[[Recipe], str | Path], session: Session
) -> tuple[bool, bool]:
    """Sync the events due in each webhook recipe's inbox; whether there were any, and whether
    some failed (and wait)."""
    from core.worker.served import drain_due

    drained = failed = False
    for recipe in served:
        synced, kept = drain_due(recipe, location(recipe), session.pm)
        if synced or kept:
            _say(f"{recipe.name}: {synced:,} webhook events synced, {kept:,} wait to be retried")
        drained = drained or synced + kept > 0
        failed = failed or kept > 0
    return drained, failed


def _nothing_due(scheduler: Scheduler, now: float) -> str:
    """One line for a look that found nothing to do: when the next scheduled run is due, or
    the next try of one that failed."""
    from core.worker.schedule import next_due

    if not scheduler.recipes:
        return "nothing due: no webhook event waits"
    retrying = scheduler.retrying(now)
    soonest = [(next_due(r.model.schedule or "", now), r.name) for r in scheduler.recipes]
    soonest += [(failed.retry_at, name) for name, failed in retrying.items()]
    due, name = min(soonest)
    if name in retrying and due == retrying[name].retry_at:
        when = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%d %H:%M:%S")
        times = _times(retrying[name].count)
        return f"nothing due now; the next run is a retry of {name} (failed {times}), at {when} UTC"
    when = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%d %H:%M")
    return f"nothing due now; the next run is {name}'s, at {when} UTC"


def _retry(failures: int, retry_at: float) -> str:
    return f"failed {_times(failures)}, next try at {_utc(retry_at)}"


def _times(failures: int) -> str:
    return "once" if failures == 1 else f"{failures} times in a row"


def _recipes(
    session: Session, paths: tuple[Path, ...], directory: Path | None
) -> tuple[list[Recipe], list[Recipe]]:
    """The recipes to run on their schedules, and those to serve: each named one (which must
    have a schedule or a webhook source), and those of ``directory`` that have either."""
    from core.webhooks import WebhookSource

    if not paths and directory is None:
        msg = "connector worker: name the recipes to run, or a folder of them with --dir"
        raise RecipeError(msg)
    named = [session.recipe(path) for path in paths]
    for recipe in named:
        if recipe.model.schedule is None and not issubclass(recipe.source_class, WebhookSource):
            msg = (
                f"{recipe.path}: no schedule: to run it on; add one, e.g. schedule:"
                ' "*/15 * * * *" (connector run runs it once)'
            )
            raise RecipeValidationError(msg)
    found = []
    if directory is not None:
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            # Looked at without its secrets first: one the worker will not run needs none set.
            seen = session.recipe(path, placeholders=True)
            if seen.model.schedule is not None or issubclass(seen.source_class, WebhookSource):
                found.append(session.recipe(path))
    recipes = _unique([*named, *found])
    served = [r for r in recipes if issubclass(r.source_class, WebhookSource)]
    scheduled = [r for r in recipes if r.model.schedule is not None]
    if not served and not scheduled:
        msg = (
            f'{directory}: no recipe in it has a schedule: (e.g. schedule: "*/15 * * * *")'
            " or a webhook source"
        )
        raise RecipeValidationError(msg)
    return scheduled, served


def _unique(recipes: list[Recipe]) -> list[Recipe]:
    """Each recipe once (named and in --dir too); two files of one name are refused."""
    kept: dict[str, Recipe] = {}
    for recipe in recipes:
        other = kept.setdefault(recipe.name, recipe)
        if other.path.resolve() != recipe.path.resolve():
            msg = f"two recipes named {recipe.name!r} ({other.path}, {recipe.path})"
            raise RecipeValidationError(msg)
    return list(kept.values())


def _announce(ran: Ran) -> None:
    due = _utc(ran.due)
    if ran.report is None:
        retry = "" if ran.retry_at is None else f"; {_retry(ran.failures, ran.retry_at)}"
        _say(f"{ran.recipe} (due {due}) stopped: {ran.error}{retry}")
        return
    counts = ", ".join(f"{n:,} {outcome}" for outcome, n in ran.report.counts.items() if n)
    _say(f"{ran.recipe} (due {due}): {counts or 'nothing to sync'}")


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _exit_code(ran: list[Ran]) -> int:
    if any(r.report is None for r in ran):
        return ExitCode.FATAL
    if any(r.report is not None and not r.report.ok for r in ran):
        return ExitCode.RECORDS_FAILED
    return ExitCode.OK


def _say(message: str) -> None:
    click.echo(f"connector worker: {message}", err=True)
    sys.stderr.flush()


def _stopped_by_signals(stop: threading.Event) -> AbstractContextManager[None]:
    """SIGTERM and SIGINT set ``stop``: the run in hand finishes, then the worker exits."""

    def note(sig: signal.Signals) -> None:
        _say(f"{sig.name}: stopping after the run in hand")
        stop.set()

    return stop_signals_handled(note)
