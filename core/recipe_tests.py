"""A recipe's inline ``tests:``: each input must map to the expected output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.errors import SkippableError
from core.mapping import FILTERED
from core.recipe import Recipe
from core.runner import validate_payload


@dataclass
class CaseResult:
    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)


def run_recipe_tests(recipe: Recipe) -> list[CaseResult]:
    return [
        _run_case(recipe, case.name or f"test {number}", case.input, case.expect, case.filtered)
        for number, case in enumerate(recipe.model.tests, start=1)
    ]


def _run_case(
    recipe: Recipe,
    name: str,
    record: dict[str, Any],
    expect: dict[str, Any] | None,
    filtered: bool,
) -> CaseResult:
    try:
        mapped = recipe.apply(record)
    except SkippableError as error:
        return CaseResult(name, False, [f"mapping failed: {error}"])
    if mapped is FILTERED:
        ok = filtered
        return CaseResult(name, ok, [] if ok else ["the filter left this record out"])
    if filtered:
        return CaseResult(name, False, ["expected the filter to leave this record out"])
    assert isinstance(mapped, dict)
    problems = _diff(expect or {}, mapped, "")
    try:
        validate_payload(recipe.sink_class, mapped, recipe.expression_at)
    except SkippableError as error:
        problems.append(f"{recipe.sink_class.name} would refuse it: {error}")
    return CaseResult(name, not problems, problems)


def _diff(expected: Any, actual: Any, path: str) -> list[str]:
    """Compare only what the test names; Decimal 25.00 and the string "25.00" are equal."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        problems = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                problems.append(f"{where}: expected {_show(value)}, but it is missing")
            else:
                problems.extend(_diff(value, actual[key], where))
        return problems
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in _diff(e, a, f"{path}.{i}")
        ]
    if _normal(expected) != _normal(actual):
        return [f"{path}: expected {_show(expected)}, got {_show(actual)}"]
    return []


def _normal(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True).strip('"')


def _show(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)
