"""A JSON Schema of recipes, built from the registered components, for editors."""

from __future__ import annotations

from typing import Any

from core.recipe import RecipeModel
from core.registry import Catalog, Registry


def recipe_json_schema(registry: Registry) -> dict[str, Any]:
    schema = RecipeModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "connector recipe"
    properties = schema["properties"]
    properties["source"] = _components(registry.sources, "source")
    properties["sink"] = _components(registry.sinks, "sink")
    schema.setdefault("$defs", {}).pop("ComponentRef", None)
    properties["map"]["description"] = (
        "output field -> expression; transforms: " + ", ".join(sorted(registry.transforms.items))
    )
    return schema


def _components(catalog: Catalog[Any], kind: str) -> dict[str, Any]:
    variants = []
    for name, component in sorted(catalog.items.items()):
        settings = component.Settings.model_json_schema(by_alias=True)
        variants.append({
            "type": "object",
            "title": name,
            "description": component.description,
            "properties": {"use": {"const": name}, "with": settings},
            "required": ["use"],
            "additionalProperties": False,
        })
    return {"description": f"the {kind}: `use` a registered {kind}", "oneOf": variants}
