"""What the hints after a command name, so the command they suggest finds what the run kept."""

from __future__ import annotations

from pathlib import Path


def hint_target(recipe_path: Path, state_path: str | None) -> str:
    """What a hint's command names (``connector dlq list ...``): the recipe, and the ``--state``
    the run used, so that the command finds what the run kept. A database URL may hold a
    password, so it is referred to, never repeated."""
    if not state_path:
        return str(recipe_path)
    if "://" in state_path:
        return f"{recipe_path} --state <the same URL>"
    return f"{recipe_path} --state {state_path}"
