"""Loading recipes: every mistake is one clear message naming file:line:column."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from core.errors import (
    MissingSecretError,
    RecipeError,
    RecipeValidationError,
    UnknownComponentError,
)
from core.recipe import load_recipe
from core.registry import Registry

GOOD = """
version: 1
name: demo
source:
  use: file.jsonl
  with: {path: in.jsonl}
map:
  id: record.id
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""


def test_a_good_recipe_resolves_its_components(write_recipe, registry: Registry) -> None:
    recipe = load_recipe(write_recipe(GOOD), registry)
    assert recipe.source_class.name == "file.jsonl"
    assert recipe.sink_settings.path == "out.jsonl"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "line", "expected"),
    [
        (("name: demo", "name: demo\nsurprise: 1"), 3, "surprise: unknown key; valid keys: "),
        (
            ("with: {path: out.jsonl}", "with: {path: out.jsonl, batchsize: 5}"),
            10,
            "sink.with.batchsize: unknown key; valid keys: batch_size, encoding, if_exists, path",
        ),
        (
            ("with: {path: out.jsonl}", "with: {path: out.jsonl, batch_size: many}"),
            10,
            "sink.with.batch_size: Input should be a valid integer",
        ),
        (
            ("use: file.jsonl\n  with: {path: in.jsonl}", "use: file.jsonl\n  with: {}"),
            5,
            "source.with.path: required key is missing",
        ),
        (("version: 1", "version: 2"), 1, "version: Input should be 1"),
    ],
)
def test_shape_errors_name_the_place_and_the_choices(
    write_recipe: Callable[..., Path],
    registry: Registry,
    change: tuple[str, str],
    line: int,
    expected: str,
) -> None:
    path = write_recipe(GOOD.replace(*change))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry)
    message = str(caught.value)
    assert expected in message
    assert f"{path}:{line}:" in message


def test_unknown_component_lists_the_known_ones(write_recipe, registry: Registry) -> None:
    path = write_recipe(
        GOOD.replace("use: file.jsonl\n  with: {path: out", "use: file.jsnl\n  with: {path: out")
    )
    with pytest.raises(UnknownComponentError) as caught:
        load_recipe(path, registry)
    assert "unknown sink 'file.jsnl' (did you mean 'file.jsonl'?); known: " in str(caught.value)
    assert "file.csv, file.jsonl" in str(caught.value)
    assert str(caught.value).startswith(f"{path}:9:")


def test_malformed_yaml_names_the_line(write_recipe, registry: Registry) -> None:
    path = write_recipe(GOOD.replace("id: record.id", "id: [record.id"))
    with pytest.raises(RecipeError, match=r"recipe.yaml:\d+:\d+: invalid YAML"):
        load_recipe(path, registry)


def test_unsafe_expression_is_refused_with_its_place(write_recipe, registry: Registry) -> None:
    path = write_recipe(GOOD.replace("id: record.id", "id: record.__class__"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry)
    assert f"{path}:7:" in str(caught.value)
    assert "__class__" in str(caught.value)


def test_environment_variables_are_interpolated(write_recipe, registry: Registry) -> None:
    path = write_recipe(GOOD.replace("out.jsonl", "'${OUT_FILE}'"))
    recipe = load_recipe(path, registry, env={"OUT_FILE": "elsewhere.jsonl"})
    assert recipe.sink_settings.path == "elsewhere.jsonl"  # type: ignore[attr-defined]


def test_a_default_applies_when_the_variable_is_unset(write_recipe, registry: Registry) -> None:
    path = write_recipe(GOOD.replace("out.jsonl", "'${OUT_FILE:-fallback.jsonl}'"))
    recipe = load_recipe(path, registry, env={})
    assert recipe.sink_settings.path == "fallback.jsonl"  # type: ignore[attr-defined]


def test_a_missing_variable_is_named(write_recipe, registry: Registry) -> None:
    path = write_recipe(GOOD.replace("out.jsonl", "'${OUT_FILE}'"))
    with pytest.raises(MissingSecretError) as caught:
        load_recipe(path, registry, env={})
    assert "environment variable OUT_FILE is not set" in str(caught.value)
    assert f"{path}:10:" in str(caught.value)


def test_dotenv_beside_the_recipe_is_read(write_recipe, registry, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OUT_FILE", raising=False)
    (tmp_path / ".env").write_text("OUT_FILE=from-dotenv.jsonl\n")
    recipe = load_recipe(write_recipe(GOOD.replace("out.jsonl", "'${OUT_FILE}'")), registry)
    assert recipe.sink_settings.path == "from-dotenv.jsonl"  # type: ignore[attr-defined]


def test_a_secret_value_never_appears_in_an_error(write_recipe, registry) -> None:
    secret = "sk_live_very_secret_value_123"
    text = GOOD.replace("{path: out.jsonl}", "{path: out.jsonl, api_key: '${STRIPE_API_KEY}'}")
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(text), registry, env={"STRIPE_API_KEY": secret})
    assert secret not in str(caught.value)


def test_a_mapped_field_the_sink_lacks_is_refused_at_load(write_recipe, registry) -> None:
    text = """\
version: 1
name: typo
source: {use: file.jsonl, with: {path: in.jsonl}}
map:
  transactionId: record.id
  amout: record.amount
sink:
  use: virtuous.gift_transactions
  with: {api_key: k}
"""
    path = write_recipe(text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry)
    assert "map.amout: virtuous.gift_transactions has no field 'amout'" in str(caught.value)
    assert "amount" in str(caught.value)
    assert str(caught.value).startswith(f"{path}:6:")


def test_anchors_and_merge_keys_share_settings(write_recipe, registry) -> None:
    text = GOOD.replace(
        "  with: {path: in.jsonl}", "  with: &files {path: in.jsonl, encoding: latin-1}"
    ).replace("  with: {path: out.jsonl}", "  with: {<<: *files, path: out.jsonl}")
    recipe = load_recipe(write_recipe(text), registry)
    assert recipe.source_settings.path == "in.jsonl"  # type: ignore[attr-defined]
    assert recipe.sink_settings.path == "out.jsonl"  # type: ignore[attr-defined]
    assert recipe.sink_settings.encoding == "latin-1"  # type: ignore[attr-defined]


def test_an_alias_inside_its_own_anchor_is_refused_with_its_place(write_recipe, invoke) -> None:
    path = write_recipe(
        GOOD.replace("  with: {path: in.jsonl}", "  with: &loop {path: in.jsonl, extra: *loop}")
    )
    result = invoke("validate", path)
    assert result.exit_code == 2
    message = result.stderr.replace("\n  ", " ")
    assert f"{path}:5:39: *loop is inside &loop, the value it stands for" in message
    assert "Traceback" not in result.output


def test_aliases_that_expand_without_end_are_refused_quickly(write_recipe, invoke) -> None:
    lols = ["lol: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lols += [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = write_recipe(GOOD.replace("name: demo", "name: demo\n" + "\n".join(lols)))
    assert len(path.read_bytes()) < 1000
    started = time.monotonic()
    result = invoke("validate", path)
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert "aliases expand to more than 10,000 values" in result.stderr


def test_a_key_that_is_a_list_is_refused_with_its_place(write_recipe, registry) -> None:
    path = write_recipe(GOOD.replace("  id: record.id", "  ? [id, other]\n  : record.id"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry)
    assert (
        str(caught.value) == f"{path}:7:5: a key must be text or a number, not a list or a mapping"
    )


# --- hostile recipe files: exit 2 with one line naming the file, the line and the cause ---------

BROKEN_RECIPES = {
    "a byte that is not UTF-8": (
        GOOD.encode().replace(b"name: demo", b"name: d\xffmo"),
        ":3:8: the recipe is not UTF-8 text (byte 0xff)",
    ),
    "a NUL": (GOOD.encode().replace(b"name: demo", b"name: d\x00mo"), ":3:8: invalid YAML"),
    "a control character": (
        GOOD.encode().replace(b"name: demo", b"name: d\x07mo"),
        ":3:8: invalid YAML: the character '\\x07' is not allowed",
    ),
    "a hex literal of 4,000 digits": (
        GOOD.replace("id: record.id", "id: 0x" + "f" * 4000).encode(),
        ":8:7: the number 0xffffffffff… (4,002 characters) is too large",
    ),
    "an integer of 4,400 digits": (
        GOOD.replace("id: record.id", "id: " + "9" * 4400).encode(),
        ":8:7: the number 999999999999… (4,400 characters) is too large",
    ),
    "a hex literal of 4,000 digits in an expression": (
        GOOD.replace("id: record.id", 'id: "record.id + 0x' + "f" * 4000 + '"').encode(),
        ":8:3: map.id: the number 0xffffffffff… (4,002 characters) is too large",
    ),
    "an index of 4,000 hex digits": (
        GOOD.replace("id: record.id", 'id: "record.id[0x' + "f" * 4000 + ']"').encode(),
        ":8:3: map.id: the number 0xffffffffff… (4,002 characters) is too large",
    ),
    "a date that is no date": (
        GOOD.replace("id: record.id", "id: 2025-13-45").encode(),
        ":8:7: cannot read 2025-13-45 as a date: month must be in 1..12",
    ),
    "a float that is no float": (
        GOOD.replace("id: record.id", 'id: !!float "x"').encode(),
        ":8:7: cannot read 'x' as a float: could not convert string to float: 'x'",
    ),
    "text that is not Unicode in an expression": (
        GOOD.replace("id: record.id", "id: \"record.id + '\\udc80'\"").encode(),
        ":8:3: map.id: \"record.id + '\\udc80'\" holds text that is not Unicode",
    ),
    "lists nested 150 deep": (
        GOOD.replace("id: record.id", "id: " + "[" * 150 + "]" * 150).encode(),
        ": the recipe is nested more than 100 deep (CONNECTOR_MAX_DEPTH)",
    ),
}


@pytest.mark.parametrize(("content", "said"), BROKEN_RECIPES.values(), ids=BROKEN_RECIPES.keys())
def test_a_broken_recipe_file_exits_2_with_one_line(
    invoke: Callable[..., Result], tmp_path: Path, content: bytes, said: str
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(content)
    result = invoke("run", path)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.replace("\n ", " ").splitlines()
    assert line.startswith(f"error: {path}"), line
    assert said in line
    assert invoke("validate", path).exit_code == 2


def test_a_limit_that_is_no_number_exits_2_naming_it(
    write_recipe, invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_MAX_DIGITS", "lots")
    try:
        result = invoke("validate", write_recipe(GOOD))
    finally:
        monkeypatch.delenv("CONNECTOR_MAX_DIGITS")
        invoke("validate", write_recipe(GOOD))  # the defaults again, for the tests after
    assert result.exit_code == 2
    assert "CONNECTOR_MAX_DIGITS must be a whole number from 1 to 1,000,000,000, not 'lots'" in (
        result.stderr
    )


def test_brackets_nested_thousands_deep_are_refused_at_once(
    invoke: Callable[..., Result], tmp_path: Path
) -> None:
    # PyYAML's scanner takes time that grows with the square of the depth: 5,000 took seconds.
    path = tmp_path / "recipe.yaml"
    path.write_text(GOOD.replace("id: record.id", "id: " + "[" * 5000))
    started = time.monotonic()
    result = invoke("validate", path)
    assert time.monotonic() - started < 1
    assert result.exit_code == 2
    assert f"{path}:8:107: the recipe is nested more than 100 deep" in result.stderr.replace(
        "\n  ", " "
    )


def test_a_setting_refused_by_its_validator_is_told_without_pydantic_s_words(
    write_recipe, registry: Registry
) -> None:
    text = GOOD.replace(
        "use: file.jsonl\n  with: {path: in.jsonl}",
        "use: file.csv\n  with: {path: in.csv, header: false}",
    )
    with pytest.raises(RecipeValidationError) as caught:
        load_recipe(write_recipe(text), registry)
    message = str(caught.value)
    assert "source.with: with header: false, set columns: to the column names" in message
    assert "Value error" not in message
