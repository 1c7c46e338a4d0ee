"""`connector plan` and `run --dry-run` with file sources and sinks: counts, money, hints."""

from __future__ import annotations

import json

from tests.conftest import write_jsonl

PASS_THROUGH = """
version: 1
name: charges
source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
sink: {use: file.jsonl, with: {path: out.jsonl}}
"""

MAPPED = """
version: 1
name: charges
source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
map:
  id: record.id
  amount: record.amount | minor_to_major(record.currency)
  currency: record.currency | upper
sink: {use: file.jsonl, with: {path: out.jsonl}}
"""

CHARGE = {"id": "ch_1", "amount": 2500, "currency": "usd"}


def test_a_record_passed_through_unmapped_counts_no_money(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [CHARGE])
    recipe = write_recipe(PASS_THROUGH)
    for command in (("plan", recipe), ("run", recipe, "--dry-run"), ("run", recipe)):
        result = invoke(*command, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["money"] == {}  # not USD 2,500.00: 2,500 is cents
        assert "2,500" not in invoke(*command).stdout


def test_mapped_amounts_are_totalled_in_major_units(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [CHARGE, {**CHARGE, "id": "ch_2", "amount": 199}])
    result = invoke("plan", write_recipe(MAPPED))
    assert result.exit_code == 0, result.output
    assert "amount USD" in result.stdout
    assert "26.99" in result.stdout
    assert not (tmp_path / "out.jsonl").exists()


def test_plan_then_run_on_a_file_sink_agree(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [CHARGE, {**CHARGE, "id": "ch_2"}])
    recipe = write_recipe(MAPPED)
    assert invoke("run", recipe).exit_code == 0
    write_jsonl(
        tmp_path / "in.jsonl",
        [CHARGE, {**CHARGE, "id": "ch_2", "amount": 1}, {"id": 3, "amount": 1, "currency": "nope"}],
    )
    planned = json.loads(invoke("plan", recipe, "--json").stdout)
    ran = json.loads(invoke("run", recipe, "--json").stdout)
    assert planned["outcomes"] == ran["outcomes"]
    assert {k: v for k, v in ran["outcomes"].items() if v} == {
        "unchanged": 1,
        "updated": 1,
        "invalid": 1,
    }


def test_hints_name_the_recipe_and_commands_that_show_something(
    write_recipe, invoke, tmp_path
) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": 3, "amount": 1, "currency": "nope"}])
    recipe = write_recipe(MAPPED)
    planned = invoke("plan", recipe)
    assert planned.exit_code == 1
    assert "dlq" not in planned.output  # a dry run keeps no dead letters to list
    assert f"connector run {recipe}" in planned.output
    ran = invoke("run", recipe)
    assert f"connector dlq list {recipe}" in ran.output
    listed = invoke("dlq", "list", recipe, "--json")
    assert [letter["key"] for letter in json.loads(listed.stdout)] == ["3"]


def test_plan_of_a_webhook_recipe_previews_its_reconciling_poll_as_run_reads_it(
    invoke, tmp_path
) -> None:
    from tests.core.test_run_webhook_recipe import HOOKS, RECONCILE

    recipe = tmp_path / "hooks.yaml"
    recipe.write_text(HOOKS.replace("{reconcile}", RECONCILE), encoding="utf-8")
    write_jsonl(tmp_path / "gifts.jsonl", [{"id": n, "amount": 10 * n} for n in (1, 2)])
    planned = invoke("plan", recipe, "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["outcomes"]["written"] == 2  # was 0 records read
    assert not (tmp_path / "out.jsonl").exists()


def test_plan_of_a_webhook_recipe_without_a_poll_points_at_connector_serve(
    invoke, tmp_path
) -> None:
    from tests.core.test_run_webhook_recipe import HOOKS

    recipe = tmp_path / "hooks.yaml"
    recipe.write_text(HOOKS.replace("{reconcile}", ""), encoding="utf-8")
    planned = invoke("plan", recipe)
    assert planned.exit_code == 2  # as connector run: nothing it could read
    assert f"connector serve {recipe}" in planned.stderr
