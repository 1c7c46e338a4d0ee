"""``connector validate``: check recipes before any record moves, with no secret needed.

Loading a recipe checks its shape, its components' settings, its expressions (transforms and
their arguments) and that its map sets every field the sink requires. Then each source says what
it can tell without its service (an input file that is not there), and ``--sample N`` reads N
records to name each ``record.`` path the recipe reads that none of them had.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.cli import (
    ExitCode,
    Session,
    pass_session,
    recipes_argument,
    redact_text,
    reports_errors,
    state_option,
)
from core.errors import RecipeError
from core.recipe import load_recipe
from core.record_paths import ADVICE

if TYPE_CHECKING:
    from core.env import WithPlaceholders
    from core.recipe import Recipe


@dataclass
class Checked:
    """What ``validate`` found in one recipe."""

    path: Path
    source: str | None = None
    sink: str | None = None
    errors: list[str] = field(default_factory=list)
    sampled: int | None = None
    missing_paths: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.missing_paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "source": self.source,
            "sink": self.sink,
            "errors": self.errors,
            "sampled": self.sampled,
            "missing_paths": self.missing_paths,
        }


@click.command()
@recipes_argument()
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    metavar="N",
    help="read N records from each source (this needs its secrets) and name each record."
    " path the recipe reads that none of them had",
)
@click.option("--json", "as_json", is_flag=True, help="print the findings as JSON")
@state_option
@pass_session
@reports_errors
def validate(
    session: Session,
    recipe_paths: tuple[Path, ...],
    sample: int | None,
    as_json: bool,
    state_path: str | None,
) -> None:
    """Check recipes without writing anything; unset variables read as <NAME>.

    Exit 0 when every recipe is fine, 2 when one is not.
    """
    results = [_check(session, path, sample, state_path) for path in recipe_paths]
    if as_json:
        click.echo(redact_text(json.dumps([r.to_dict() for r in results], indent=2)))
    else:
        for result in results:
            _show(result)
    sys.exit(ExitCode.OK if all(r.ok for r in results) else ExitCode.USAGE)


def _check(session: Session, path: Path, sample: int | None, state_path: str | None) -> Checked:
    """The recipe's mistakes; a broken plugin (exit 3) is not one, and stops the command."""
    checked = Checked(path)
    try:
        env = _environment(path)
        recipe = load_recipe(path, session.registry, env=env)
        checked.source, checked.sink = recipe.source_class.name, recipe.sink_class.name
        checked.errors += _source_problems(recipe, env)
        if not checked.errors:
            checked.errors += _not_in_every_record(recipe)
        if sample is not None and not checked.errors:
            _sample(session, recipe, env, sample, state_path, checked)
    except RecipeError as error:
        checked.errors += str(error).splitlines()
    return checked


def _environment(path: Path) -> WithPlaceholders:
    """The recipe's environment, unset variables (and empty secrets) read as ``<NAME>``: what
    validating needs is the recipe, not its secrets, so it runs in CI."""
    from core.env import WithPlaceholders, environment

    return WithPlaceholders(environment(path.parent))


def _source_problems(recipe: Recipe, env: WithPlaceholders) -> list[str]:
    settings = recipe.model.source.with_
    problems = recipe.source_class.preflight(recipe.source_settings, recipe.base_dir)
    return [
        f"{recipe.located.where(('source', 'with', name))}: source.with.{name}: {problem}"
        for name, problem in problems.items()
        if not env.holds_placeholder(settings.get(name))  # the real value is not known here
    ]


def _not_in_every_record(recipe: Recipe) -> list[str]:
    """A ``record.`` path whose field the source says no record has (a CSV file's header)."""
    fields = recipe.source_class.record_fields(recipe.source_settings, recipe.base_dir)
    if fields is None:
        return []
    problems = []
    for path in (*recipe.mapping.filter_paths, *recipe.mapping.map_paths):
        name = path[0]
        if len(path) > 1 or not isinstance(name, str) or name in fields:
            continue
        at = recipe.mapping.read_at.get(path, ("map",))
        import difflib  # here: a field no source gives is rare, validate is started often

        close = difflib.get_close_matches(name, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{recipe.located.where(at)}: {'.'.join(map(str, at))}: record.{name} is missing in"
            f" every record; {recipe.source_class.name}'s have: {', '.join(fields)}{hint}"
        )
    return problems


def _sample(
    session: Session,
    recipe: Recipe,
    env: WithPlaceholders,
    count: int,
    state_path: str | None,
    checked: Checked,
) -> None:
    """Read ``count`` records of the source and look for the paths the recipe reads in them."""
    from core.mapping import FILTERED

    unset = env.placeholders_in(recipe.model.source.with_)
    if unset:
        msg = (
            f"--sample reads the source, which needs {', '.join(unset)}: set"
            f" {'it' if len(unset) == 1 else 'them'} (or add to .env)"
        )
        raise RecipeError(msg, where=recipe.located.where(("source", "with")))
    records = _read(session, recipe, count, state_path)  # a source that fails stops: exit 3
    watch = recipe.missing_paths()
    for record in records:
        watch.observe(record, _mapped(recipe, record) is not FILTERED)
    checked.sampled = len(records)
    checked.missing_paths = watch.report() + _unsent_required(recipe, records)


def _read(
    session: Session, recipe: Recipe, count: int, state_path: str | None
) -> list[dict[str, Any]]:
    from core.context import Context
    from core.source import Unreadable

    records: list[dict[str, Any]] = []
    with session.state(recipe, state_path) as store:
        context = Context(recipe.name, recipe.base_dir, store)
        source = recipe.source_class(recipe.source_settings, context)
        try:
            for record in source.read(None):
                if not isinstance(record, Unreadable):
                    records.append(record)
                if len(records) >= count:
                    break
        finally:
            source.close()
            context.close()
    return records


def _mapped(recipe: Recipe, record: dict[str, Any]) -> object:
    """The record's mapping, or anything but FILTERED when it fails: its paths count."""
    from core.errors import MappingError

    try:
        return recipe.apply(record)
    except MappingError:
        return None


def _unsent_required(recipe: Recipe, records: list[dict[str, Any]]) -> list[str]:
    """Without ``map:`` the records are the payloads: a field the sink requires that none of
    them holds is the same mistake as a map that never sets it."""
    model = recipe.sink_class.Model
    if recipe.model.map is not None or model is None or not records:
        return []
    return [
        f"record.{name} was missing in all {len(records)} records, and {recipe.sink_class.name}"
        " requires it (the recipe has no map:, so records are sent as they are)"
        for name, info in model.model_fields.items()
        if info.is_required()
        and name not in recipe.sink_class.fills
        and not any(name in record for record in records)
    ]


def _show(result: Checked) -> None:
    if result.ok:
        read = f"{result.sampled} record{'' if result.sampled == 1 else 's'} read"
        sampled = "" if result.sampled is None else f" ({read})"
        click.echo(f"✓ {result.path}: {result.source} → {result.sink}{sampled}")
        return
    from rich.markup import escape

    from core.console import console_for

    errors = console_for(stderr=True)
    errors.print(f"[red]✗[/] {escape(str(result.path))}", markup=True)
    for line in (*result.errors, *result.missing_paths):
        errors.print(f"  {redact_text(line)}", markup=False, soft_wrap=True)
    if result.missing_paths:
        errors.print(f"  {ADVICE}", markup=False, soft_wrap=True)
