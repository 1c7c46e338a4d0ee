"""The shape of a recipe file: the pydantic models a recipe is first validated against.

:mod:`core.recipe` loads a file into them, then checks each component's own ``with:`` settings.

This module alone does without ``from __future__ import annotations``: pydantic would evaluate
each field's annotation text again at every start-up (a ``compile`` per field, about a tenth of
building the models), where written as code they are evaluated once, with the class.
"""

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

#: The ``two_way:`` conflict policies, as the recipe's errors list them.
TWO_WAY_CHOICES = "latest, or owner: {<field of map:>: <service>}"


def _no_entries() -> dict[str, Any]:
    """An empty ``with:`` or ``tables:``. Not ``default_factory=dict``: pydantic reads a default
    factory's signature, and a builtin's is parsed from text by tokenize, whose first use
    compiles a regular expression that costs every start-up ~8 ms."""
    return {}


class ComponentRef(BaseModel):
    """``use:`` names a registered component; ``with:`` holds its settings."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    use: str = Field(description="a registered component, e.g. stripe.charges")
    with_: dict[str, Any] = Field(default_factory=_no_entries, alias="with")


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def duration_seconds(text: str) -> int:
    """``1h30m``, ``15m``, ``45s`` as seconds; ValueError for anything else (or zero)."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        msg = f"{text!r} is not a duration; write it like 30s, 15m, 1h or 1h30m"
        raise ValueError(msg)
    hours, minutes, secs = (int(part or 0) for part in found.groups())
    total = hours * 3600 + minutes * 60 + secs
    if total <= 0:
        msg = f"{text!r} is no time at all; give how often to poll, e.g. 15m"
        raise ValueError(msg)
    return total


def _checked_text(value: object, check: Callable[[str], object], kind: str) -> object:
    """``value``, once ``check`` accepts it when it is text; the ValueError ``check`` raises is
    said as it is, without pydantic's "Value error, " in front. A bare number (``every: 15``) is
    read as the text it is, to be told what is missing."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        try:
            check(value)
        except ValueError as error:
            raise PydanticCustomError(kind, str(error)) from None
    return value


class ReconcileRef(ComponentRef):
    """A webhook recipe's reconciling poll: a polling source of the same objects, read every
    ``every`` by ``connector serve`` through the recipe's ledger, to fill what lost webhooks
    left out."""

    every: str = Field(default="15m", description="how often to poll: 30s, 15m, 1h, 1h30m")

    @field_validator("every", mode="before")
    @classmethod
    def _is_duration(cls, value: object) -> object:
        return _checked_text(value, duration_seconds, "duration")

    @property
    def seconds(self) -> int:
        return duration_seconds(self.every)


def check_schedule(text: str) -> str:
    """``text`` if it is a cron expression (``*/15 * * * *``); else ValueError saying why."""
    from croniter import croniter  # imported only by a recipe that has a schedule

    if not croniter.is_valid(text):
        msg = (
            f"{text!r} is not a cron schedule; write five fields, minute hour day month weekday,"
            ' e.g. "*/15 * * * *" (every 15 minutes) or "0 2 * * *" (at 02:00 every day)'
        )
        raise ValueError(msg)
    return text


class RecipeTestCase(BaseModel):
    """An inline test: a source record and the mapped payload it must give."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    input: dict[str, Any]
    expect: dict[str, Any] | None = None
    filtered: bool = False


def _no_tests() -> list[RecipeTestCase]:
    """No inline tests (not ``default_factory=list``, as :func:`_no_entries` says)."""
    return []


class TwoWayModel(BaseModel):
    """The shape of ``two_way:``; ``conflict`` is checked by :func:`check_pair`, which can name
    the fields and services to choose from."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    with_: str = Field(alias="with", description="the paired recipe's file, beside this one")
    conflict: Any = Field(default=None, description=TWO_WAY_CHOICES)


class RecipeModel(BaseModel):
    """The shape of a recipe file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str | None = None
    source: ComponentRef
    filter: str | None = None
    map: dict[str, Any] | None = Field(
        default=None, description="output field -> expression; omitted: records pass unchanged"
    )
    sink: ComponentRef
    reconcile: ReconcileRef | None = Field(
        default=None, description="webhook recipes: a polling source that fills lost events"
    )
    two_way: TwoWayModel | None = Field(
        default=None, description="the paired recipe of a two-way sync, and its conflict policy"
    )
    schedule: str | None = Field(
        default=None, description='when connector worker runs it, in cron syntax: "*/15 * * * *"'
    )
    tables: dict[str, dict[str, Any]] = Field(default_factory=_no_entries)
    day_first: bool | None = Field(
        default=None,
        description="how parse_date and format_date read a date that reads two ways"
        " (01/02/2025): true for D/M/YYYY, false for M/D/YYYY",
    )
    tests: list[RecipeTestCase] = Field(default_factory=_no_tests)

    @field_validator("schedule", mode="before")
    @classmethod
    def _is_cron(cls, value: object) -> object:
        return _checked_text(value, check_schedule, "schedule")
