"""Recipes: loading a YAML file into a validated, compiled recipe.

Validation runs in two passes. First the recipe's shape (:mod:`core.recipe_model`); then, once
``use:`` names are resolved through the registry, each component's ``with:`` block against that
component's own ``Settings`` model. Every error names ``file:line:column`` and the key path.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from core import limits
from core.env import SECRET_FORMAT, WithPlaceholders, environment, interpolate
from core.errors import RecipeError, RecipeSyntaxError, RecipeValidationError
from core.mapping import FILTERED, CompiledMapping, compile_mapping
from core.preflight import check_required, declared_paths, inner_model
from core.recipe_model import RecipeModel, ReconcileRef
from core.record_paths import MissingPaths, paths_in
from core.yaml_marks import Located, load_located

if TYPE_CHECKING:
    from core.pair import Pair
    from core.registry import Registry
    from core.sink import Sink
    from core.source import Source

M = TypeVar("M", bound=BaseModel)


@dataclass
class Recipe:
    """A loaded recipe with its components resolved, settings validated and mapping compiled."""

    path: Path
    model: RecipeModel
    located: Located
    source_class: type[Source]
    source_settings: BaseModel
    sink_class: type[Sink]
    sink_settings: BaseModel
    mapping: CompiledMapping
    reconcile_class: type[Source] | None = None
    reconcile_settings: BaseModel | None = None
    #: the checked ``two_way:`` block; None for a one-way recipe
    pair: Pair | None = None

    def reconciling(self) -> Recipe:
        """This recipe reading its ``reconcile:`` source instead of its webhooks: the same
        name, so the same ledger, map and sink."""
        assert self.reconcile_class is not None
        assert self.reconcile_settings is not None
        return replace(
            self, source_class=self.reconcile_class, source_settings=self.reconcile_settings
        )

    def apply(self, record: dict[str, Any]) -> dict[str, Any] | object:
        """Filter and map one record; returns ``FILTERED`` for a record the filter leaves out.

        A recipe without ``map:`` passes records through unchanged.
        """
        mapped = self.mapping(record)
        if self.model.map is None and mapped is not FILTERED:
            return dict(record)
        return mapped

    def missing_paths(self) -> MissingPaths:
        """A watch for the ``record.`` paths no record holds, leaving out those the recipe's
        tests give or the source's ``RecordModel`` declares (see :mod:`core.record_paths`)."""
        known = paths_in(case.input for case in self.model.tests)
        known |= declared_paths(self.source_class.RecordModel)
        return self.mapping.missing_paths(known, self.located.where)

    def expression_at(self, loc: tuple[str | int, ...]) -> str | None:
        """The ``map:`` expression that gives the payload field at ``loc``, when one does."""
        node: Any = self.model.map
        for part in loc:
            inside_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
            if not (inside_list or (isinstance(node, dict) and part in node)):
                return None
            node = node[part]
        return node if isinstance(node, str) else None

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_recipe(path: Path, registry: Registry, env: Mapping[str, str] | None = None) -> Recipe:
    """Read, interpolate, validate and compile the recipe at ``path``."""
    env = env if env is not None else environment(path.parent)
    _configure_limits(env, str(path))
    try:
        data = path.read_bytes()
    except OSError as error:
        msg = f"cannot read recipe {path}: {error.strerror or error}"
        raise RecipeError(msg) from None
    located = load_located(_text(data, path), str(path))
    if not isinstance(located.data, dict):
        msg = "a recipe is a mapping with at least name, source, sink"
        raise RecipeValidationError(msg, where=located.where(()))
    from core.http.redact import register_secret

    tests = located.data.pop("tests", None)
    data = interpolate(located.data, env, located.where, register_secret)
    if tests is not None:
        data["tests"] = tests
    model = validate_model(RecipeModel, data, located, ())
    source_class = registry.sources.get(
        model.source.use, where=located.where(("source", "use")), hint=registry.failure_hint()
    )
    sink_class = registry.sinks.get(
        model.sink.use, where=located.where(("sink", "use")), hint=registry.failure_hint()
    )
    if model.map is not None and sink_class.Model is not None:
        check_fields(model.map, sink_class.Model, located, ("map",), sink_class.name)
        check_required(model.map, sink_class.Model, located, sink_class.name, sink_class.fills)
    pair = None
    if model.two_way is not None:
        from core.pair import check_pair

        pair = check_pair(model.two_way, path, located, model.map, (source_class, sink_class))
    mapping = compile_mapping(
        model.map if model.map is not None else {},
        filter_expr=model.filter,
        transforms=registry.transforms.items,
        tables=model.tables,
        locate=located.where,
        day_first=model.day_first,
    )
    recipe = Recipe(
        path=path,
        model=model,
        located=located,
        source_class=source_class,
        source_settings=_settings(
            source_class.Settings, model.source.with_, located, "source", env
        ),
        sink_class=sink_class,
        sink_settings=_settings(sink_class.Settings, model.sink.with_, located, "sink", env),
        mapping=mapping,
        pair=pair,
    )
    if model.reconcile is not None:
        _add_reconcile(recipe, model.reconcile, registry, env)
    if model.schedule is not None and _takes_webhooks(source_class):
        msg = (
            f"schedule: runs a polled source, but {source_class.name} takes webhooks as they"
            " come; remove schedule: (reconcile.every sets how often its reconciling poll runs)"
        )
        raise RecipeValidationError(msg, where=located.where(("schedule",)))
    return recipe


def _takes_webhooks(source_class: type[Source]) -> bool:
    """Whether ``source_class`` takes webhooks. Only a webhook source's module imports
    :mod:`core.webhooks`, so a recipe of polled sources never loads it (a faster ``validate``)."""
    webhooks = sys.modules.get("core.webhooks")
    return webhooks is not None and issubclass(source_class, webhooks.WebhookSource)


def _add_reconcile(
    recipe: Recipe, ref: ReconcileRef, registry: Registry, env: Mapping[str, str] | None
) -> None:
    """Resolve ``reconcile:``: a polling source, only under a webhook source."""
    located = recipe.located
    if not _takes_webhooks(recipe.source_class):
        msg = (
            f"reconcile: fills the events a webhook source missed, but {recipe.source_class.name}"
            " is polled already; remove reconcile: or use a webhook source"
        )
        raise RecipeValidationError(msg, where=located.where(("reconcile",)))
    where = located.where(("reconcile", "use"))
    found = registry.sources.get(ref.use, where=where, hint=registry.failure_hint())
    if _takes_webhooks(found):
        msg = (
            f"reconcile.use: {ref.use} is a webhook source;"
            " name a polling source of the same objects"
        )
        raise RecipeValidationError(msg, where=where)
    recipe.reconcile_class = found
    recipe.reconcile_settings = _settings(found.Settings, ref.with_, located, "reconcile", env)


def _text(data: bytes, path: Path) -> str:
    """The recipe's bytes as text; a byte that is not UTF-8 is named with its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        msg = f"the recipe is not UTF-8 text (byte 0x{data[error.start]:02x}); save it as UTF-8"
        raise RecipeSyntaxError(msg, where=f"{path}:{line}:{column}") from None


def _configure_limits(env: Mapping[str, str], where: str) -> None:
    """Put the value limits the recipe's environment sets in force (see :mod:`core.limits`)."""
    try:
        limits.configure(limits.Limits.from_environment(env))
    except ValueError as error:
        raise RecipeValidationError(str(error), where=where) from None


def _settings(
    model: type[M], data: dict[str, Any], located: Located, part: str, env: Mapping[str, str] | None
) -> M:
    """A component's ``with:`` settings, validated.

    With placeholders for unset variables (``connector test``), what only a placeholder makes
    invalid (a key's format) is taken as written: the tests map records and reach no service.
    Every other mistake (an unknown key, a wrong type) is still refused.
    """
    if isinstance(env, WithPlaceholders) and env.holds_placeholder(data):
        try:
            return model.model_validate(data)
        except ValidationError as error:
            if all(_placeholder_made(e, data, env) for e in error.errors()):
                return model.model_construct(**data)
    return validate_model(model, data, located, (part, "with"))


def _placeholder_made(error: Any, data: dict[str, Any], env: WithPlaceholders) -> bool:
    """An error about a setting that holds a placeholder, or of a whole-settings check that says
    it read one (:func:`core.env.secret_format_error`); any other mistake is refused as with the
    secrets set."""
    loc = error["loc"]
    if not loc and error["type"] == SECRET_FORMAT:
        loc = (error["ctx"]["setting"],)
    return bool(loc) and loc[0] in data and env.holds_placeholder(data[loc[0]])


def validate_model(model: type[M], data: Any, located: Located, prefix: tuple[str | int, ...]) -> M:
    """Validate ``data`` against ``model``, turning pydantic's errors into located messages."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RecipeValidationError(
            "\n".join(_describe(model, e, located, prefix) for e in error.errors()),
            where=None,
        ) from None


def check_fields(
    block: dict[str, Any],
    payload: type[BaseModel],
    located: Located,
    path: tuple[str | int, ...],
    sink: str,
) -> None:
    """Refuse a mapped field the sink's payload model does not have (a typo like ``amout``)."""
    if payload.model_config.get("extra") != "forbid":
        return
    fields = payload.model_fields
    for key, value in block.items():
        if key not in fields:
            msg = (
                f"{'.'.join(map(str, (*path, key)))}: {sink} has no field {key!r};"
                f" valid: {', '.join(fields)}"
            )
            raise RecipeValidationError(msg, where=located.where((*path, key)))
        inner = inner_model(fields[key].annotation)
        if inner is None:
            continue
        if isinstance(value, dict):
            check_fields(value, inner, located, (*path, key), sink)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    check_fields(item, inner, located, (*path, key, index), sink)


def _describe(model: type[BaseModel], error: Any, located: Located, prefix: tuple[Any, ...]) -> str:
    loc = (*prefix, *error["loc"])
    dotted = ".".join(str(part) for part in loc) or "(recipe)"
    where = located.where(loc)
    if error["type"] == "extra_forbidden":
        parent = _model_at(model, tuple(error["loc"][:-1]))
        known = (
            sorted((f.alias or name) for name, f in parent.model_fields.items()) if parent else []
        )
        choices = f"; valid keys: {', '.join(known)}" if known else ""
        return f"{where}: {dotted}: unknown key{choices}"
    if error["type"] == "missing":
        return f"{where}: {dotted}: required key is missing"
    return f"{where}: {dotted}: {error_text(error)}"


def error_text(error: Any) -> str:
    """One of pydantic's errors in words: a validator's own, without "Value error, "."""
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested model that a location points into, to list its valid keys."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            by_alias = {f.alias: f for f in current.model_fields.values() if f.alias}
            field = by_alias.get(part)
        if field is None:
            return None
        current = inner_model(field.annotation)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None
