"""${VAR} interpolation (defaults, escapes, missing variables, placeholders); seconds settings."""

from __future__ import annotations

import pytest

from core.env import WithPlaceholders, interpolate, seconds_setting
from core.errors import MissingSecretError, RecipeError


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


@pytest.mark.parametrize(
    ("text", "seconds"), [(None, 30.0), ("", 30.0), (" 2.5 ", 2.5), ("1", 1.0)]
)
def test_a_setting_in_seconds_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, text: str | None, seconds: float
) -> None:
    if text is None:
        monkeypatch.delenv("CONNECTOR_TEST_SECONDS", raising=False)
    else:
        monkeypatch.setenv("CONNECTOR_TEST_SECONDS", text)
    assert seconds_setting("CONNECTOR_TEST_SECONDS", 30.0, least=1) == seconds


@pytest.mark.parametrize("text", ["soon", "0.5", "-1", "inf", "nan"])
def test_a_setting_in_seconds_that_is_no_number_or_too_small_is_refused(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("CONNECTOR_TEST_SECONDS", text)
    with pytest.raises(
        RecipeError, match=r"CONNECTOR_TEST_SECONDS must be a number of seconds \(1 or more\)"
    ):
        seconds_setting("CONNECTOR_TEST_SECONDS", 30.0, least=1)
