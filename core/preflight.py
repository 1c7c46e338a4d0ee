"""Mistakes a recipe shows before any record moves: what the sink needs that the map never sets,
and what a source can tell without reaching its service (an input file that is not there)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from core.errors import RecipeValidationError
from core.yaml_marks import Located

RecipePath = tuple[str | int, ...]


def check_required(
    block: Mapping[str, Any],
    payload: type[BaseModel],
    located: Located,
    sink: str,
    fills: Collection[str] = (),
    path: RecipePath = ("map",),
) -> None:
    """Refuse a ``map:`` that never sets a field the sink's payload model requires.

    Every record would otherwise be dead-lettered for it. ``fills`` are required fields the sink
    completes itself (see ``Sink.fills``). A nested object written out in the map is checked
    against its own model; one computed by an expression cannot be, and is left to the run.
    """
    fields = payload.model_fields
    required = [name for name, info in fields.items() if info.is_required()]
    unset = [name for name in required if name not in block and name not in fills]
    if unset:
        described = [_described(name, fields[name].description) for name in unset]
        label = ".".join(map(str, path))
        msg = (
            f"{label}: {sink} requires {', '.join(described)}, which the map never sets;"
            f" required here: {', '.join(required)}"
            + (f" ({', '.join(sorted(fills))} filled by the sink when left out)" if fills else "")
        )
        raise RecipeValidationError(msg, where=located.where(path))
    for key, value in block.items():
        inner = inner_model(fields[key].annotation) if key in fields else None
        if inner is None:
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                where = (*path, key, index) if isinstance(value, list) else (*path, key)
                check_required(item, inner, located, sink, path=where)


def _described(name: str, description: str | None) -> str:
    return f"{name} ({description})" if description else name


def inner_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``Model``, ``Model | None``, ``list[Model]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = inner_model(arg)
        if found:
            return found
    return None


def declared_paths(model: type[BaseModel] | None, depth: int = 4) -> set[tuple[str, ...]]:
    """The record paths a source's ``RecordModel`` declares, nested models followed ``depth``
    deep: ``("billing_details", "email")``."""
    if model is None or depth == 0:
        return set()
    found: set[tuple[str, ...]] = set()
    for name, info in model.model_fields.items():
        for key in {name, info.alias or name}:
            found.add((key,))
            nested = declared_paths(inner_model(info.annotation), depth - 1)
            found.update((key, *inner) for inner in nested)
    return found
