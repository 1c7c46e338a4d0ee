"""${VAR} interpolation: defaults, escapes, missing variables and placeholders."""

from __future__ import annotations

import pytest

from core.env import WithPlaceholders, interpolate
from core.errors import MissingSecretError


def _interpolate(data: object, env: dict[str, str]) -> object:
    secrets: list[str] = []
    return interpolate(data, env, lambda path: f"recipe.yaml {path}", secrets.append)


def test_values_defaults_and_escapes() -> None:
    data = {"a": "${HOST:-localhost}:${PORT}", "b": ["$$HOME", "${EMPTY:-x}"]}
    assert _interpolate(data, {"PORT": "8080", "EMPTY": ""}) == {
        "a": "localhost:8080",
        "b": ["$HOME", "x"],
    }


def test_a_missing_variable_names_itself_and_where() -> None:
    with pytest.raises(MissingSecretError, match="API_KEY is not set") as caught:
        _interpolate({"with": {"api_key": "${API_KEY}"}}, {})
    assert "('with', 'api_key')" in str(caught.value)


def test_placeholders_fill_only_what_has_no_default() -> None:
    data = {"url": "${URL:-https://example.org}", "key": "${API_KEY}"}
    assert _interpolate(data, WithPlaceholders()) == {
        "url": "https://example.org",
        "key": "<API_KEY>",
    }
