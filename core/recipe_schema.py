"""A JSON Schema of recipes, built from the registered components, for editors.

Point an editor at ``connector schema``'s output and it completes ``use:`` names, each
component's ``with:`` settings and, for the sink a recipe uses, the fields of ``map:`` with their
descriptions, and flags a misspelt key. A ``${VAR}`` string is accepted in every typed setting
(a port, a flag), since the variable is read only when the recipe is loaded.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.preflight import inner_model
from core.recipe_model import RecipeModel
from core.registry import Catalog, Registry

# ``${NAME}`` or ``${NAME:-default}``, alone or inside other text, as core.env reads them.
_VARIABLE = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
# What an editor shows next to a field; the rest of the property's schema checks values.
_NOTES = ("title", "description", "default", "examples")


def recipe_json_schema(registry: Registry) -> dict[str, Any]:
    schema = RecipeModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "connector recipe"
    properties = schema["properties"]
    definitions = schema.setdefault("$defs", {})
    definitions.pop("ComponentRef", None)
    properties["source"] = _components(registry.sources, "source", definitions)
    properties["sink"] = _components(registry.sinks, "sink", definitions)
    properties["map"]["description"] = "output field -> expression; transforms: " + ", ".join(
        sorted(registry.transforms.items)
    )
    schema["allOf"] = [
        _map_of(name, sink.Model, sink.fills, definitions)
        for name, sink in sorted(registry.sinks.items.items())
        if sink.Model is not None
    ]
    return schema


def _components(catalog: Catalog[Any], kind: str, definitions: dict[str, Any]) -> dict[str, Any]:
    """One variant per component; nested models go to the root ``$defs`` their refs point at."""
    variants = []
    for name, component in sorted(catalog.items.items()):
        settings = component.Settings.model_json_schema(by_alias=True)
        nested = settings.pop("$defs", {})
        for model in (settings, *nested.values()):
            _accept_variables(model)
        definitions.update(nested)
        variants.append(
            {
                "type": "object",
                "title": name,
                "description": component.description,
                "properties": {"use": {"const": name}, "with": settings},
                "required": ["use"],
                "additionalProperties": False,
            }
        )
    return {"description": f"the {kind}: `use` a registered {kind}", "oneOf": variants}


def _accept_variables(model: dict[str, Any]) -> None:
    """Let every setting that is not plain text hold a ``${VAR}`` string too."""
    for name, prop in model.get("properties", {}).items():
        if prop.get("type") == "string" and not {"enum", "const", "pattern", "format"} & set(prop):
            continue
        notes = {key: prop.pop(key) for key in _NOTES if key in prop}
        model["properties"][name] = {**notes, "anyOf": [prop, _VARIABLE]}


def _map_of(
    sink: str, payload: type[BaseModel], fills: frozenset[str], definitions: dict[str, Any]
) -> dict[str, Any]:
    """``map:``'s fields when ``sink: use:`` names ``sink``: its payload model's, described."""
    return {
        "if": {
            "properties": {"sink": {"properties": {"use": {"const": sink}}, "required": ["use"]}},
            "required": ["sink"],
        },
        "then": {"properties": {"map": {"$ref": _map_definition(payload, definitions, fills)}}},
    }


def _map_definition(
    payload: type[BaseModel], definitions: dict[str, Any], fills: frozenset[str] = frozenset()
) -> str:
    """The ``$ref`` of a map block giving ``payload``'s fields, defined once per model."""
    key = f"map {payload.__module__}.{payload.__qualname__}" + (
        f" filled {','.join(sorted(fills))}" if fills else ""
    )
    ref = f"#/$defs/{key}"
    if key in definitions:
        return ref
    definitions[key] = {}  # a model that contains itself refers back here
    shown = payload.model_json_schema(by_alias=True).get("properties", {})
    properties: dict[str, Any] = {}
    for name, info in payload.model_fields.items():
        prop: dict[str, Any] = {"description": _describe(info.description, shown.get(name, {}))}
        inner = inner_model(info.annotation)
        if inner is not None:
            # No "type" in a map definition: an expression (text) passes it, and an object or
            # each object of a list is checked, so a typo is named as such, not "no variant".
            nested = {"$ref": _map_definition(inner, definitions)}
            prop |= {"allOf": [nested], "items": nested}
        properties[name] = prop
    required = [n for n, info in payload.model_fields.items() if info.is_required()]
    definitions[key] = {
        "description": f"{payload.__doc__ or payload.__name__}".strip().splitlines()[0],
        "properties": properties,
        "required": [name for name in required if name not in fills],
        "additionalProperties": payload.model_config.get("extra") != "forbid",
    }
    return ref


def _describe(description: str | None, shown: dict[str, Any]) -> str:
    """The field's description, or else what it holds: ``date``, ``one of: Cash, Check``."""
    if description:
        return description
    if "enum" in shown:
        return "one of: " + ", ".join(map(str, shown["enum"]))
    kinds = [part for part in shown.get("anyOf", [shown]) if part.get("type") != "null"]
    words = [part.get("format") or part.get("type") or "an object" for part in kinds]
    return " or ".join(dict.fromkeys(words)) or "a value"
