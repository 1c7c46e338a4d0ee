"""``connector describe`` and ``connector plugins``: settings with defaults and descriptions, a
source's record fields (declared, or sampled through a shipped recipe), plain text in 80 columns."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from pydantic import BaseModel, Field

from core.describe import describe, plugins_lines, plugins_listing
from core.describe_text import plain, summary
from core.plugins import load_plugins
from core.source import Source

MARKUP = ("``", ":func:", ":class:", ":meth:", "`")


def _fits(text: str) -> None:
    assert text.strip()
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert too_long == []


def test_plugins_lists_every_component_as_plain_text_within_80_columns(invoke, registry) -> None:
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    _fits(result.stdout)
    assert not any(mark in result.stdout for mark in MARKUP)
    for name in [*registry.sources.names(), *registry.sinks.names(), *registry.transforms.names()]:
        assert f"  {name} " in result.stdout or f"  {name}\n" in result.stdout, name
    assert "value as a Decimal" in result.stdout  # to_decimal's "``value`` as a ``Decimal``"


def test_plugins_json_has_each_kind(invoke) -> None:
    listing = json.loads(invoke("plugins", "--json").stdout)
    csv = next(s for s in listing["sources"] if s["name"] == "file.csv")
    assert csv == {
        "name": "file.csv",
        "plugin": "connectors.files",
        "description": csv["description"],
    }
    assert {"sources", "sinks", "transforms"} == set(listing)


def test_plugins_with_a_name_describes_it(invoke) -> None:
    result = invoke("plugins", "file.csv")
    assert result.exit_code == 0, result.output
    assert "source file.csv [connectors.files]" in result.stdout
    assert "sink file.csv [connectors.files]" in result.stdout
    _fits(result.stdout)


def test_a_source_shows_its_settings_with_defaults_and_its_sampled_record_fields(invoke) -> None:
    result = invoke("describe", "stripe.charges", "--json")
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    settings = {s["name"]: s for s in described["settings"]}
    assert settings["api_key"] == {
        "name": "api_key",
        "type": "secret",
        "required": True,
        "default": None,
        "description": "a secret (sk_) or restricted (rk_) key",
    }
    assert settings["page_size"]["default"] == 100
    assert settings["start"]["type"] == "integer or date or date-time or null"  # as validated
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["amount"]["type"] == "integer"
    assert fields["metadata.designation"]["type"] == "text"
    assert "stripe emulator" in described["fields_from"]
    assert "virtuous emulator" not in described["fields_from"]  # the sink's is not needed


def test_a_sink_shows_the_fields_map_may_set(invoke) -> None:
    result = invoke("describe", "virtuous.gift_transactions")
    assert result.exit_code == 0, result.output
    _fits(result.stdout)
    assert "payload fields (what map: sets):" in result.stdout
    assert "transactionSource" in result.stdout
    assert "batch_size" in result.stdout


def test_a_transform_shows_its_call_and_its_documentation(invoke) -> None:
    result = invoke("describe", "lookup")
    assert result.exit_code == 0, result.output
    assert "lookup(value, table, default=None)" in result.stdout


def test_an_unknown_name_is_refused_with_the_known_ones(invoke) -> None:
    result = invoke("describe", "stripe.charge")
    assert result.exit_code == 2
    assert "unknown component 'stripe.charge'" in result.stderr
    assert "stripe.charges" in result.stderr


class Pledge(BaseModel):
    id: str = Field(description="the pledge's id")
    cents: int


class Pledges(Source):
    name: ClassVar[str] = "example.pledges"
    description: ClassVar[str] = "pledges, declared"
    RecordModel = Pledge

    def read(self, cursor: object) -> list[dict[str, object]]:  # type: ignore[override]
        return []


def test_a_source_that_declares_its_record_model_is_described_by_it() -> None:
    registry = load_plugins(load_entrypoints=False)[1]
    registry.sources.add("example.pledges", Pledges, "test")
    (entry,) = describe(registry, "example.pledges")
    assert entry["fields_from"] == "declared by the source"
    assert entry["fields"][0] == {
        "name": "id",
        "type": "text",
        "required": True,
        "default": None,
        "description": "the pledge's id",
    }


@pytest.mark.parametrize(
    ("doc", "shown"),
    [
        ("``value`` as a ``Decimal``.", "value as a Decimal."),
        ("Read it as :func:`parse_date` does.", "Read it as parse_date does."),
        ("See :class:`~core.registry.Lazy`.", "See Lazy."),
        (
            "The *first* value\n    over two lines.\n\n    Details.",
            "The first value over two lines.",
        ),
    ],
)
def test_docstring_markup_becomes_plain_text(doc: str, shown: str) -> None:
    assert summary(doc) == shown
    assert plain("a ``b``") == "a b"


@pytest.mark.parametrize(
    ("doc", "shown"),
    [
        ("Upper-case text; ``None`` stays ``None``.", "Upper-case text; None stays None."),
        (
            '``"GENERAL 50.00; MISSIONS 25.00"``: each code and amount.',
            '"GENERAL 50.00; MISSIONS 25.00": each code and amount.',
        ),
        ("The first sentence. The second.", "The first sentence."),
    ],
)
def test_a_transform_is_summed_up_by_its_whole_first_sentence(doc: str, shown: str) -> None:
    assert summary(doc, sentence=True) == shown


def test_the_plugins_table_shows_no_sentence_cut_short(invoke) -> None:
    listing = json.loads(invoke("plugins", "--json").stdout)
    cut = [t["name"] for t in listing["transforms"] if t["description"].endswith((";", ":"))]
    assert cut == []
    assert ":;" not in json.dumps(listing)


def test_long_names_keep_whole_and_lines_fit(registry) -> None:
    listing = plugins_listing(registry)
    listing["sinks"].append(
        {"name": "x" * 50, "plugin": "p", "description": "a long description " * 8}
    )
    lines = plugins_lines(listing)
    assert "  " + "x" * 50 in lines
    assert all(len(line) <= 80 for line in lines)


def test_a_transform_s_details_name_no_class_of_ours(invoke) -> None:
    result = invoke("describe", "parse_date")
    assert result.exit_code == 0, result.output
    assert "DateOrder" not in result.stdout  # how it works inside means nothing to a user
    assert "day_first: at a recipe's top" in " ".join(result.stdout.split())


def test_a_long_example_value_is_never_cut_mid_word(invoke) -> None:
    result = invoke("describe", "stripe.charges")
    assert result.exit_code == 0, result.output
    assert '"https://pay.stripe.com/receipts/emulated"' in result.stdout  # not "rec" + "eipts"
