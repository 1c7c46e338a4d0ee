"""``connector validate``: mistakes caught before any record moves, with no secret needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_jsonl

GIFTS = """
version: 1
name: gifts
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  transactionId: record.id
  amount: record.cents | minor_to_major(record.currency)
  giftDate: record.day
  giftType: "'Cash'"
  contact: {email: record.email}
sink:
  use: virtuous.gift_transactions
  with: {api_key: "${VIRTUOUS_API_KEY}"}
"""

ROWS = [
    {"id": f"g{n}", "cents": 100 * n, "currency": "usd", "day": "2025-01-02", "email": "a@b.org"}
    for n in range(1, 4)
]


@pytest.fixture
def rows(tmp_path):
    return write_jsonl(tmp_path / "in.jsonl", ROWS)


def test_validate_needs_no_secret(write_recipe, invoke, rows, monkeypatch) -> None:
    monkeypatch.delenv("VIRTUOUS_API_KEY", raising=False)
    result = invoke("validate", write_recipe(GIFTS))
    assert result.exit_code == 0, result.output
    assert "file.jsonl → virtuous.gift_transactions" in result.stdout


def test_a_required_sink_field_the_map_never_sets_is_named(write_recipe, invoke, rows) -> None:
    recipe = write_recipe(GIFTS.replace("  giftType: \"'Cash'\"\n", ""))
    result = invoke("validate", recipe)
    assert result.exit_code == 2
    assert f"{recipe}:6:1: map: virtuous.gift_transactions requires giftType" in result.stderr
    # the valid choices, and what the sink fills itself
    assert "required here: transactionSource, transactionId, contact" in result.stderr
    assert "transactionId, transactionSource filled by the sink" in result.stderr
    assert invoke("run", recipe).exit_code == 2  # a run refuses it too, before reading


def test_a_required_field_inside_a_list_of_objects(write_recipe, invoke, rows) -> None:
    recipe = write_recipe(
        GIFTS.replace("  giftType:", "  designations: [{code: GEN}]\n  giftType:")
    )
    result = invoke("validate", recipe)
    assert result.exit_code == 2
    assert "map.designations.0: virtuous.gift_transactions requires amountDesignated" in (
        result.stderr
    )


def test_an_input_file_that_does_not_exist(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "donations.jsonl", ROWS)
    result = invoke("validate", write_recipe(GIFTS))
    assert result.exit_code == 2
    assert (
        f"recipe.yaml:5:10: source.with.path: input file {tmp_path / 'in.jsonl'} does not exist;"
        f" {tmp_path} holds donations.jsonl"
    ) in result.stderr


def test_a_transform_given_the_wrong_number_of_arguments(write_recipe, invoke, rows) -> None:
    for wrong, problem in (
        ("record.cents | minor_to_major", "missing a required argument: 'currency'"),
        ("record.cents | minor_to_major('usd', 2)", "too many positional arguments"),
    ):
        recipe = write_recipe(
            GIFTS.replace("record.cents | minor_to_major(record.currency)", wrong)
        )
        result = invoke("validate", recipe)
        assert result.exit_code == 2
        assert f"recipe.yaml:8:3: map.amount: {wrong!r}: minor_to_major: {problem}" in (
            result.stderr
        )
        assert "minor_to_major takes (value, currency)" in result.stderr


def test_an_empty_secret_is_named_before_any_request(write_recipe, invoke, rows, monkeypatch):
    monkeypatch.setenv("VIRTUOUS_API_KEY", "")
    recipe = write_recipe(GIFTS)
    assert invoke("validate", recipe).exit_code == 0  # read as a placeholder, as if unset
    result = invoke("run", recipe)
    assert result.exit_code == 2
    assert "environment variable VIRTUOUS_API_KEY is set but empty" in result.stderr
    assert "LocalProtocolError" not in result.output


def test_sample_names_a_path_no_record_had(write_recipe, invoke, rows) -> None:
    recipe = write_recipe(GIFTS.replace("record.email", "record.emial"))
    assert invoke("validate", recipe).exit_code == 0  # nothing tells without records
    result = invoke("validate", "--sample", "3", recipe)
    assert result.exit_code == 2
    assert (
        "recipe.yaml:11:13: map.contact.email: record.emial was missing in all 3 records;"
        " fields: cents, currency, day, email, id" in result.stderr
    )
    found = json.loads(invoke("validate", "--sample", "2", "--json", recipe).stdout)
    assert found[0]["ok"] is False
    assert found[0]["sampled"] == 2
    assert found[0]["missing_paths"] == [
        f"{recipe}:11:13: map.contact.email: record.emial was missing in all 2 records;"
        " fields: cents, currency, day, email, id"
    ]


def test_sample_of_a_source_whose_secret_is_unset(write_recipe, invoke, monkeypatch) -> None:
    monkeypatch.delenv("IN_KEY", raising=False)
    recipe = write_recipe(GIFTS.replace("path: in.jsonl", 'path: "in-${IN_KEY}.jsonl"'))
    result = invoke("validate", "--sample", "1", recipe)
    assert result.exit_code == 2
    assert "--sample reads the source, which needs IN_KEY" in result.stderr


def test_sample_without_a_map_checks_what_the_sink_requires(write_recipe, invoke, rows) -> None:
    recipe = write_recipe(GIFTS.split("map:")[0] + "sink:" + GIFTS.split("sink:")[1])
    assert invoke("validate", recipe).exit_code == 0  # records are the payloads: unknown yet
    result = invoke("validate", "--sample", "2", recipe)
    assert result.exit_code == 2
    assert "record.giftType was missing in all 2 records" in result.stderr
    assert "requires it (the recipe has no map:" in result.stderr


CSV = """
version: 1
name: csv
source: {use: file.csv, with: {path: in.csv, key: id}}
filter: record.status == 'paid'
map:
  id: record.id
  email: record.emial
sink: {use: file.jsonl, with: {path: out.jsonl}}
"""


def test_a_csv_column_the_recipe_misspells_needs_no_sample(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text("id,email,status\n1,a@b.org,paid\n")
    result = invoke("validate", write_recipe(CSV))
    assert result.exit_code == 2
    assert (
        "recipe.yaml:7:3: map.email: record.emial is missing in every record; file.csv's have:"
        " id, email, status (did you mean 'email'?)"
    ) in result.stderr
    assert invoke("validate", write_recipe(CSV.replace("emial", "email"))).exit_code == 0


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SECRETS = {"VIRTUOUS_API_KEY": "vk_test", "MAILCHIMP_API_KEY": "0123abcd-us21"}


@pytest.mark.parametrize("secrets_set", [False, True], ids=["without secrets", "with secrets"])
def test_a_webhook_recipe_without_events_is_refused_with_or_without_secrets(
    write_recipe, invoke, monkeypatch, secrets_set
) -> None:
    """A placeholder for an unset key excuses only what the key could have caused."""
    for name, value in SECRETS.items():
        if secrets_set:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    text = (RECIPES / "virtuous-webhooks-to-mailchimp.yaml").read_text(encoding="utf-8")
    recipe = write_recipe(text.replace("    events: [ContactCreate, ContactUpdate]\n", ""))
    result = invoke("validate", recipe)
    assert result.exit_code == 2, result.output
    assert "source.with: set events: gift events or contact events" in result.stderr


MAILCHIMP_SINK = """
version: 1
name: to-mailchimp
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  email_address: record.email
sink:
  use: mailchimp.members
  with: {api_key: "${MAILCHIMP_API_KEY}", list_id: LIST}
"""


def test_a_mailchimp_key_unset_is_excused_but_one_without_its_data_center_is_not(
    write_recipe, invoke, rows, monkeypatch
) -> None:
    recipe = write_recipe(MAILCHIMP_SINK)
    monkeypatch.delenv("MAILCHIMP_API_KEY", raising=False)
    assert invoke("validate", recipe).exit_code == 0  # <MAILCHIMP_API_KEY> names no data center
    monkeypatch.setenv("MAILCHIMP_API_KEY", "0123abcd")
    result = invoke("validate", recipe)
    assert result.exit_code == 2
    assert "sink.with: the API key does not end with its data center" in result.stderr


def test_a_mailchimp_mistake_beside_an_unset_key_is_still_refused(
    write_recipe, invoke, rows, monkeypatch
) -> None:
    monkeypatch.delenv("MAILCHIMP_API_KEY", raising=False)
    result = invoke("validate", write_recipe(MAILCHIMP_SINK.replace("list_id: LIST", "list: L")))
    assert result.exit_code == 2
    assert "sink.with.list: unknown key" in result.stderr
