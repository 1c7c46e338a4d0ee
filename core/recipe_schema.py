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
    definitions = schema.setdefault("$defs", {})
    definitions.pop("ComponentRef", None)
    properties["source"] = _components(registry.sources, "source", definitions)
    properties["sink"] = _components(registry.sinks, "sink", definitions)
    properties["map"]["description"] = "output field -> expression; transforms: " + ", ".join(
        sorted(registry.transforms.items)
    )
    return schema


def _components(catalog: Catalog[Any], kind: str, definitions: dict[str, Any]) -> dict[str, Any]:
    """One variant per component; nested models go to the root ``$defs`` their refs point at."""
    variants = []
    for name, component in sorted(catalog.items.items()):
        settings = component.Settings.model_json_schema(by_alias=True)
        definitions.update(settings.pop("$defs", {}))
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
