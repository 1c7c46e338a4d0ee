"""Record paths a recipe reads that no record had: named by every run, which then exits 1."""

from __future__ import annotations

import json

from core.mapping import compile_mapping
from core.transforms import builtin_transforms
from tests.conftest import write_jsonl


def _watch(block: dict[str, str], filter_expr: str | None = None):
    mapping = compile_mapping(block, filter_expr=filter_expr, transforms=builtin_transforms())
    return mapping, mapping.missing_paths()


def test_a_path_missing_from_every_record_is_named_with_the_fields_there() -> None:
    mapping, watch = _watch({"email": "record.emial | lower", "name": "record.name"})
    for record in ({"email": "a@b.org", "name": "A"}, {"email": "c@d.org", "name": None}):
        watch.observe(record, mapped=True)
    assert watch.report() == [
        "map.email: record.emial was missing in all 2 records; fields: email, name"
    ]


def test_a_path_any_record_had_is_not_named_and_no_longer_looked_for() -> None:
    _, watch = _watch({"note": "record.note"})
    watch.observe({"id": 1}, mapped=True)
    watch.observe({"id": 2, "note": None}, mapped=True)  # present, even if null
    assert not watch.pending
    assert watch.report() == []


def test_under_a_null_parent_a_record_says_nothing_and_a_missing_parent_is_named_alone() -> None:
    _, watch = _watch({"email": "record.customer.email", "city": "record.adress.city"})
    watch.observe({"customer": None, "address": {"city": "Paris"}}, mapped=True)
    assert watch.report() == [
        "map.city: record.adress was missing in the one record; fields: address, customer"
    ]


def test_map_paths_are_looked_for_only_in_records_the_filter_lets_through() -> None:
    _, watch = _watch({"amount": "record.amount"}, filter_expr="record.status == 'paid'")
    watch.observe({"status": "failed"}, mapped=False)
    watch.observe({"status": "paid", "amount": 5}, mapped=True)
    assert watch.report() == []
    _, typo = _watch({"amount": "record.amount"}, filter_expr="record.statsu == 'paid'")
    typo.observe({"status": "paid", "amount": 5}, mapped=False)
    assert typo.report() == [
        "filter: record.statsu was missing in the one record; fields: amount, status"
    ]


RECIPE = """
version: 1
name: paths
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  id: record.id
  email: record.emial
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""


def test_a_run_names_the_path_in_its_report_and_exits_1(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": n, "email": f"{n}@b.org"} for n in range(3)])
    recipe = write_recipe(RECIPE)
    result = invoke("run", "--json", recipe)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["missing_paths"] == [
        f"{recipe}:8:3: map.email: record.emial was missing in all 3 records; fields: email, id"
    ]
    assert report["ok"] is False
    result = invoke("run", recipe)  # unchanged records are read, and looked at, all the same
    assert result.exit_code == 1
    assert "record.emial was missing in all 3 records" in result.stderr
    fixed = write_recipe(RECIPE.replace("emial", "email"))
    assert invoke("run", fixed).exit_code == 0


def test_a_path_the_recipes_tests_give_is_an_optional_field_never_named(
    write_recipe, invoke, tmp_path
) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": n} for n in range(2)])
    optional = RECIPE.replace("record.emial", "record.donor.email") + (
        "tests:\n  - input: {id: t, donor: {email: a@b.org}}\n    expect: {email: a@b.org}\n"
    )
    result = invoke("run", "--json", write_recipe(optional))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_paths"] == []
    result = invoke("run", write_recipe(RECIPE, "typo.yaml"))
    assert "give a test of the recipe an input that has it" in result.stderr


def test_a_field_the_sources_record_model_declares_is_never_named() -> None:
    from pydantic import BaseModel

    from core.preflight import declared_paths

    class Donor(BaseModel):
        email: str | None = None

    class Donation(BaseModel):
        id: str
        donor: Donor | None = None

    assert declared_paths(Donation) == {("id",), ("donor",), ("donor", "email")}
    mapping, _ = _watch({"email": "record.donor.email", "typo": "record.donor.emial"})
    watch = mapping.missing_paths(declared_paths(Donation))
    watch.observe({"id": "1", "donor": {"name": "A"}}, mapped=True)
    assert watch.report() == [
        "map.typo: record.donor.emial was missing in the one record; fields: name"
    ]
