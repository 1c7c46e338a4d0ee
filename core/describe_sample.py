"""A source's record fields, sampled: a shipped recipe that reads the source is run against the
sandbox's emulators (only those whose variables it reads) and its first records are read, from a
copy in a temporary folder, with state that is thrown away."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConnectorError
from core.source import Unreadable

if TYPE_CHECKING:
    import pluggy

    from core.registry import Registry
    from core.sandbox import SandboxEmulator

LIMIT = 20
# Where the sink's emulator would be: never called, since only the source reads.
_NOWHERE = "http://127.0.0.1:9"
_TYPES = {str: "text", bool: "true/false", int: "integer", float: "number", type(None): "null"}


def sample_fields(
    name: str, registry: Registry, pm: pluggy.PluginManager
) -> tuple[list[dict[str, Any]], str]:
    """The dotted paths of the records a shipped recipe reads from source ``name``, each with
    the types seen and an example; and where they come from."""
    from core.init import parsed_yaml, templates

    template = next((t for t in templates().values() if t.source_use() == name), None)
    if template is None:
        return [], "no shipped recipe reads this source, so none were sampled"
    source_text = json.dumps(parsed_yaml(template.path).get("source"))
    emulators = _all_emulators(pm)
    serve = [e for e in emulators if _reads_variables_of(source_text, e)]
    # The sink's variables must be set for the recipe to load; its emulator is not needed.
    stand_ins = {k: v for e in emulators for k, v in e.variables(_NOWHERE).items()}
    try:
        records = _read(template.path, registry, serve, stand_ins)
    except (ConnectorError, OSError) as error:
        return [], f"sampling through recipes/{template.path.name} failed: {error}"
    where = " and ".join(e.name for e in serve)
    if not records:
        return [], f"recipes/{template.path.name} read no record to sample from"
    origin = f"the {where} emulator" if where else "its input file"
    return _fields(records), (
        f"sampled from {len(records)} records read from {origin} by recipes/{template.path.name}"
    )


def _all_emulators(pm: pluggy.PluginManager) -> list[SandboxEmulator]:
    from core.sandbox.fleet import chosen, registered_emulators

    return chosen(registered_emulators(pm), [])


def _reads_variables_of(text: str, emulator: SandboxEmulator) -> bool:
    return any("${" + variable in text for variable in emulator.variables(_NOWHERE))


def _read(
    recipe_path: Path,
    registry: Registry,
    emulators: list[SandboxEmulator],
    stand_ins: dict[str, str],
) -> list[dict[str, Any]]:
    from core.context import Context
    from core.recipe import load_recipe
    from core.sandbox.fleet import serving
    from core.sandbox.workspace import environment_set, recipe_copies
    from core.state import open_state

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        served = stack.enter_context(serving(emulators))
        variables = stand_ins | {k: v for one in served for k, v in one.variables().items()}
        stack.enter_context(environment_set(variables))
        copy = recipe_copies([recipe_path], folder)[0]
        recipe = load_recipe(copy, registry)
        store = open_state(folder / "state.db")
        stack.callback(store.close)
        context = Context(recipe.name, copy.parent, store)
        stack.callback(context.close)
        source = recipe.source_class(recipe.source_settings, context)
        stack.callback(source.close)
        read = (r for r in source.read(None) if not isinstance(r, Unreadable))
        records: list[dict[str, Any]] = list(islice(read, LIMIT))
        return records
    return []  # pragma: no cover - ExitStack does not swallow errors


def _fields(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        for path, value in _leaves(record, ""):
            entry = seen.setdefault(path, {"name": path, "types": [], "example": None})
            kind = _kind(value)
            if kind not in entry["types"]:
                entry["types"].append(kind)
            if entry["example"] is None and not isinstance(value, dict | list):
                entry["example"] = value if not isinstance(value, str) else value[:40]
    for entry in seen.values():
        entry["type"] = " or ".join(sorted(entry["types"], key=lambda t: t == "null"))
    return sorted(seen.values(), key=lambda e: str(e["name"]))


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
        yield path, value
        for item in value:
            yield from _leaves(item, f"{path}[0]")
    else:
        yield path, value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return _TYPES.get(type(value), type(value).__name__)
