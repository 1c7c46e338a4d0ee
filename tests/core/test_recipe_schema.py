"""The recipe JSON Schema (``connector schema``) that editors complete and check recipes with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.recipe_schema import recipe_json_schema
from core.registry import Registry

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator(registry: Registry) -> jsonschema.Draft202012Validator:
    schema = recipe_json_schema(registry)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _as_an_editor_reads(path: Path) -> Any:
    """The recipe as JSON: an editor reads an unquoted 2025-01-01 as that text."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))


def _problems(validator: jsonschema.Draft202012Validator, recipe: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(recipe)]


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_is_valid(path: Path, validator) -> None:
    assert _problems(validator, _as_an_editor_reads(path)) == []


def _stripe() -> dict[str, Any]:
    return _as_an_editor_reads(next(p for p in RECIPES if p.stem.startswith("stripe-charges")))


def test_a_typo_in_a_map_field_is_flagged_with_the_sinks_fields(validator, registry) -> None:
    recipe = _stripe()
    recipe["map"]["amout"] = recipe["map"].pop("amount")
    problems = _problems(validator, recipe)
    assert any("'amout' was unexpected" in p for p in problems), problems
    assert any("'amount' is a required property" in p for p in problems), problems
    recipe["map"]["amount"] = recipe["map"].pop("amout")
    recipe["map"]["contact"]["emial"] = "record.email"
    assert any("'emial' was unexpected" in p for p in _problems(validator, recipe))
    fields = _map_fields(recipe_json_schema(registry), "virtuous.gift_transactions")
    assert fields["segment"]["description"] == "the segment's code"  # the model's own words
    assert fields["giftDate"]["description"] == "date"


def _map_fields(schema: dict[str, Any], sink: str) -> dict[str, Any]:
    (rule,) = [
        r
        for r in schema["allOf"]
        if r["if"]["properties"]["sink"]["properties"]["use"]["const"] == sink
    ]
    ref = rule["then"]["properties"]["map"]["$ref"].removeprefix("#/$defs/")
    return schema["$defs"][ref]["properties"]


def test_a_field_the_sink_fills_itself_is_not_required(validator) -> None:
    recipe = _stripe()
    del recipe["map"]["transactionSource"], recipe["map"]["transactionId"]
    assert _problems(validator, recipe) == []


def test_unquoted_dates_and_variables_in_typed_settings(validator) -> None:
    recipe = _stripe()
    recipe["source"]["with"]["start"] = "2025-01-01"  # `start: 2025-01-01`, read by an editor
    recipe["source"]["with"]["page_size"] = "${PAGE_SIZE:-50}"
    recipe["sink"]["with"]["batch_size"] = "${BATCH}"
    assert _problems(validator, recipe) == []
    recipe["sink"]["with"]["batch_size"] = "many"
    assert _problems(validator, recipe) != []
