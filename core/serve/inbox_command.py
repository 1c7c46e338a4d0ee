"""``connector inbox list|retry RECIPE``: the events ``connector serve`` holds for a recipe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.cli import (
    Session,
    pass_session,
    recipe_argument,
    redact_text,
    reports_errors,
    state_option,
)
from core.hints import hint_target

if TYPE_CHECKING:
    from core.state import InboxEvent


@click.group()
def inbox() -> None:
    """The webhook inbox: events acknowledged by `connector serve`, not yet in the sink."""


@inbox.command("list")
@recipe_argument
@state_option
@click.option("--all", "show_all", is_flag=True, help="done events too (kept for 7 days)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@pass_session
@reports_errors
def inbox_list(
    session: Session, recipe_path: Path, state_path: str | None, show_all: bool, as_json: bool
) -> None:
    """List RECIPE's events waiting in the inbox, oldest first, with their last error."""
    from core.state import inbox_of

    recipe = session.recipe(recipe_path, placeholders=True)
    statuses = ("pending", "failed", "done") if show_all else ("pending", "failed")
    with session.state(recipe, state_path) as store:
        events = inbox_of(store).inbox_events(recipe.name, statuses)
    if as_json:
        click.echo(json.dumps([_row(event) for event in events], indent=2))
        return
    for event in events:
        row = _row(event)
        error = f"  last error: {row['last_error']}" if row["last_error"] else ""
        # attempts counts the tries that failed: a done event's last, good one is not in it
        failed = f"  failed attempts {event.attempts}" if event.attempts else ""
        again = (
            f"  next attempt {row['next_attempt']}"
            if event.attempts and row["next_attempt"]
            else ""
        )
        held = f"  claimed until {_when(event.leased_until)}" if event.leased_until else ""
        click.echo(
            f"{event.seq}  {event.status:<7}  {event.type}  key {event.key}"
            f"{failed}{again}{held}  received {row['received_at']}{error}"
        )
    click.echo(f"{len(events)} event(s) in the inbox of {recipe.name}")
    for line in _next_steps(events, hint_target(recipe_path, state_path)):
        click.echo(line)


@inbox.command("retry")
@recipe_argument
@state_option
@pass_session
@reports_errors
def inbox_retry(session: Session, recipe_path: Path, state_path: str | None) -> None:
    """Make RECIPE's failed and waiting events due now; a running `connector serve` takes
    them at once, else the next start does."""
    from core.state import inbox_of

    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        count = inbox_of(store).inbox_retry(recipe.name)
    click.echo(f"{count} event(s) of {recipe.name} to be tried again")


def _next_steps(events: list[InboxEvent], target: str) -> list[str]:
    """What to type about the events listed: a failed one waits for a person; a waiting one for
    `connector serve`, at its next attempt or at once after `inbox retry`."""
    failed = sum(event.status == "failed" for event in events)
    waiting = sum(event.status == "pending" for event in events)
    lines = []
    if failed:
        lines.append(
            f"{failed:,} failed after every attempt: once what the last error names is fixed,"
            f" `connector inbox retry {target}` makes them due again"
        )
    if waiting:
        lines.append(
            f"{waiting:,} waiting: `connector serve {target}` syncs them (a running one does,"
            f" at the next attempt); `connector inbox retry {target}` makes them due now"
        )
    return lines


def _row(event: InboxEvent) -> dict[str, object]:
    return {
        "seq": event.seq,
        "status": event.status,
        "type": event.type,
        "key": event.key,
        "event_id": event.event_id,
        "attempts": event.attempts,
        "received_at": _when(event.received_at),
        "next_attempt": _when(event.available_at) if event.status == "pending" else None,
        "next": _next(event),
        "last_error": redact_text(event.last_error) if event.last_error else None,
    }


def _next(event: InboxEvent) -> dict[str, str | None] | None:
    """When a pending event is tried next: from ``at`` (at once if that has passed), unless a
    worker holds it now (``leased_until``: its claim's end, when another may take it if that
    worker is gone). None for an event no worker will try: done, or failed for good."""
    if event.status != "pending":
        return None
    held = _when(event.leased_until) if event.leased_until is not None else None
    return {"at": _when(event.available_at), "leased_until": held}


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
