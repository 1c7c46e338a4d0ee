"""``connector dlq list|show|resolve|retry RECIPE``: the records that did not reach the sink.

Each dead letter needs one of two things (:func:`core.hints.dead_letter_step`): sent again by
``dlq retry`` (invalid after a fix, failed), or, left for a person, handled in the service by
hand and then recorded by ``dlq resolve``, after which the next run leaves it alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.cli import (
    Session,
    exit_with_report,
    pass_session,
    recipe_argument,
    reports_errors,
    state_option,
)
from core.errors import RecipeError
from core.hints import hint_target

if TYPE_CHECKING:
    from core.state import Batch, DeadLetter, StateStore


@click.group()
def dlq() -> None:
    """The dead-letter queue: records that did not reach the sink, with the reason."""


@dlq.command("list")
@recipe_argument
@state_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@pass_session
@reports_errors
def dlq_list(session: Session, recipe_path: Path, state_path: str | None, as_json: bool) -> None:
    """List RECIPE's dead letters, each with the command it needs next."""
    from core import output

    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        letters = store.dead_letters(recipe.name)
    output.print_dead_letters(letters, hint_target(recipe_path, state_path), as_json=as_json)


@dlq.command("show")
@recipe_argument
@click.argument("key")
@state_option
@pass_session
@reports_errors
def dlq_show(session: Session, recipe_path: Path, key: str, state_path: str | None) -> None:
    """Show one dead letter, with the source record."""
    from core import output

    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        letters = [d for d in store.dead_letters(recipe.name) if d.key == key]
    if not letters:
        raise RecipeError(_unknown(key, recipe.name, hint_target(recipe_path, state_path)))
    output.print_dead_letter(letters[0])


@dlq.command("resolve")
@recipe_argument
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@state_option
@pass_session
@reports_errors
def dlq_resolve(
    session: Session, recipe_path: Path, keys: tuple[str, ...], state_path: str | None
) -> None:
    """Record that a person handled RECIPE's needs_review records KEY... in the service by
    hand, as each reason says (applied a change the sink cannot make, adjusted a partial
    refund, looked for a refund in doubt, matched a contact): the ledger takes each record as
    it is now, and its dead letter goes. The next run leaves it alone; changed later, it is
    sent only as an update, never written a second time."""
    from core.state.lock import run_lock

    recipe = session.recipe(recipe_path, placeholders=True)
    target = hint_target(recipe_path, state_path)
    locked = run_lock(recipe.path, recipe.name)
    with locked, session.state(recipe, state_path) as store, store.lock(recipe.name):
        batch = _resolution(store, recipe.name, list(dict.fromkeys(keys)), target)
        store.commit(recipe.name, batch)
    count = len(batch.resolved)
    click.echo(f"{count} record(s) of {recipe.name} resolved: the next run leaves them alone")


def _resolution(store: StateStore, recipe: str, keys: list[str], target: str) -> Batch:
    """What ``dlq resolve`` commits for ``keys``: each one's ledger row (its earlier sink key,
    if it was written before) and the end of its dead letter and of any in-flight mark (a
    refund in doubt). Any key that cannot be resolved refuses them all, naming why."""
    from core.outcomes import Outcome
    from core.state import Batch

    letters = {d.key: d for d in store.dead_letters(recipe)}
    in_doubt = {item.key: item.digest for item in store.in_flight(recipe)}
    earlier = store.ledger(recipe, keys)
    batch, problems = Batch(), []
    for key in keys:
        letter = letters.get(key)
        digest = _digest(letter, in_doubt)
        if letter is None or digest is None:
            problems.append(_refusal(key, letter, recipe, target))
            continue
        written = earlier.get(key)
        if written is None:
            batch.ledger.append((key, digest, None, Outcome.WRITTEN))
        else:
            batch.ledger.append((key, digest, written.sink_key, Outcome.UPDATED))
        batch.resolved.append(key)
        if key in in_doubt:
            batch.settled.append(key)
    if problems:
        raise RecipeError("\n".join([*problems, "nothing was resolved"]))
    return batch


def _digest(letter: DeadLetter | None, in_doubt: dict[str, str]) -> str | None:
    """What the ledger takes for ``letter``: the payload it keeps, or for a refund in doubt
    dead-lettered before letters kept one, the payload that was sent."""
    from core.outcomes import Outcome

    if letter is None or letter.outcome is not Outcome.NEEDS_REVIEW:
        return None
    return letter.digest or in_doubt.get(letter.key)


def _refusal(key: str, letter: DeadLetter | None, recipe: str, target: str) -> str:
    from core.outcomes import Outcome

    if letter is None:
        return _unknown(key, recipe, target)
    if letter.outcome is Outcome.NEEDS_REVIEW:
        return (
            f"{key!r} of recipe {recipe} was dead-lettered before connector kept what dlq"
            f" resolve records: `connector dlq retry {target}` asks the service again (and"
            " keeps it), then resolve it"
        )
    return (
        f"{key!r} of recipe {recipe} is {letter.outcome}, which a retry can fix: `connector dlq"
        f" retry {target}` sends it again (an invalid one after fixing its record or the recipe)"
    )


def _unknown(key: str, recipe: str, target: str) -> str:
    return (
        f"no dead letter {key!r} for recipe {recipe}: `connector dlq list {target}` lists its keys"
    )


@dlq.command("retry")
@recipe_argument
@state_option
@click.option("--json", "as_json", is_flag=True, help="print one JSON run report on stdout")
@pass_session
@reports_errors
def dlq_retry(session: Session, recipe_path: Path, state_path: str | None, as_json: bool) -> None:
    """Send RECIPE's dead letters through the current recipe again."""
    from core.runner import Runner
    from core.state.lock import run_lock

    recipe = session.recipe(recipe_path)
    with run_lock(recipe.path, recipe.name), session.state(recipe, state_path) as store:
        report = Runner(recipe, store, pm=session.pm).replay()
    exit_with_report(report, as_json, hint_target(recipe_path, state_path))
