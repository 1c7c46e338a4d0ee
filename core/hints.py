"""What the hints after a command name, so the command they suggest finds what the run kept."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from core.state import DeadLetter


def hint_target(recipe_path: Path, state_path: str | None) -> str:
    """What a hint's command names (``connector dlq list ...``): the recipe, and the ``--state``
    the run used, so that the command finds what the run kept. A database URL may hold a
    password, so it is referred to, never repeated."""
    if not state_path:
        return str(recipe_path)
    if "://" in state_path:
        return f"{recipe_path} --state <the same URL>"
    return f"{recipe_path} --state {state_path}"


def dead_letter_step(letter: DeadLetter) -> Literal["resolve", "show", "retry"]:
    """The ``dlq`` command a dead letter needs next: one left for a person (a change the sink
    cannot make, a partial refund, a refund in doubt, a contact no one matches) is handled in
    the service by hand, as its reason says, then resolved (a retry would only meet the same
    answer); a needs_review kept without what ``dlq resolve`` records is read first (the next
    run keeps it); an invalid or failed record is sent again."""
    from core.outcomes import Outcome  # not at start-up: the CLI imports this module

    if letter.resolvable:
        return "resolve"
    return "show" if letter.outcome is Outcome.NEEDS_REVIEW else "retry"
