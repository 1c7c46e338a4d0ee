"""The ``two_way:`` key: a pair is checked when a recipe loads, and every mistake is named with
its line and the valid choices (the pair at work is in tests/connectors/mailchimp/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import RecipeValidationError
from core.pair import Pair
from core.recipe import load_recipe
from core.registry import Registry
from tests.test_recipes import FAKE_ENV

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
HALF = "mailchimp-to-virtuous-two-way.yaml"
OTHER = "virtuous-to-mailchimp-two-way.yaml"
OWNERS = """    owner:
      email: mailchimp       # the address a member changes in Mailchimp is the one to keep
      firstName: virtuous    # names changed in Mailchimp are not written over Virtuous's
      lastName: virtuous
"""


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    for name in (HALF, OTHER):
        shutil.copy(RECIPES / name, tmp_path / name)
    return tmp_path


def _load(folder: Path, registry: Registry, old: str = "", new: str = "") -> Pair | None:
    path = folder / HALF
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return load_recipe(path, registry, env=FAKE_ENV).pair


def _refused(folder: Path, registry: Registry, old: str, new: str) -> str:
    with pytest.raises(RecipeValidationError) as refused:
        _load(folder, registry, old, new)
    return str(refused.value)


def test_the_shipped_pair_loads_with_its_owners(pair: Path, registry: Registry) -> None:
    loaded = _load(pair, registry)
    assert loaded is not None
    assert (loaded.partner, loaded.latest) == ("virtuous-to-mailchimp-two-way", False)
    assert loaded.other_side_owns("firstName")
    assert not loaded.other_side_owns("email")
    assert not loaded.other_side_owns("referenceId")  # unowned: written as one-way


def test_latest_is_a_policy(pair: Path, registry: Registry) -> None:
    loaded = _load(pair, registry, f"  conflict:\n{OWNERS}", "  conflict: latest\n")
    assert loaded is not None
    assert loaded.latest


def test_a_pair_without_a_conflict_policy_is_refused(pair: Path, registry: Registry) -> None:
    message = _refused(pair, registry, f"  conflict:\n{OWNERS}", "")
    assert f"{HALF}:32:1: two_way.conflict is required" in message  # the two_way: line
    assert "valid: latest, or owner: {<field of map:>: <service>}" in message


def test_an_unknown_policy_is_refused(pair: Path, registry: Registry) -> None:
    message = _refused(pair, registry, f"  conflict:\n{OWNERS}", "  conflict: newest\n")
    assert "two_way.conflict cannot be 'newest'; valid: latest, or owner:" in message


def test_an_owner_of_a_field_the_map_lacks_is_refused(pair: Path, registry: Registry) -> None:
    message = _refused(pair, registry, "      firstName: virtuous", "      firstname: virtuous")
    assert f"{HALF}:37:7: two_way.conflict.owner: 'firstname' is not a field of map:" in message
    assert "valid: email, firstName, lastName, referenceId, referenceSource" in message


def test_an_owner_that_is_neither_side_is_refused(pair: Path, registry: Registry) -> None:
    message = _refused(pair, registry, "      lastName: virtuous", "      lastName: stripe")
    assert "two_way.conflict.owner.lastName: 'stripe' is neither side" in message
    assert "valid: mailchimp, virtuous" in message


def test_a_partner_that_is_missing_is_refused(pair: Path, registry: Registry) -> None:
    message = _refused(pair, registry, f"with: {OTHER}", "with: nowhere.yaml")
    assert f"{HALF}:33:3: two_way.with: cannot read the paired recipe nowhere.yaml" in message


def test_a_partner_that_does_not_name_this_one_back_is_refused(
    pair: Path, registry: Registry
) -> None:
    other = pair / OTHER
    other.write_text(other.read_text().replace(f"with: {HALF}", "with: elsewhere.yaml"))
    message = _refused(pair, registry, "", "")
    assert "the paired recipe virtuous-to-mailchimp-two-way must name this one back" in message
    assert f"(two_way: {{with: {HALF}}})" in message


def test_a_partner_that_writes_elsewhere_is_refused(pair: Path, registry: Registry) -> None:
    other = pair / OTHER
    other.write_text(other.read_text().replace("use: mailchimp.members", "use: file.jsonl"))
    message = _refused(pair, registry, "", "")
    assert "the recipes of a pair write to each other's source" in message
    assert "reads virtuous and writes file; this recipe reads mailchimp and writes virtuous" in (
        message
    )


def test_a_sink_that_cannot_say_what_it_wrote_is_refused(pair: Path, registry: Registry) -> None:
    message = _refused(
        pair, registry, "use: virtuous.contacts\n", "use: virtuous.contact_transactions\n"
    )
    assert "virtuous.contact_transactions cannot take part in a two-way pair" in message


def test_the_cli_names_the_line_and_exits_2(pair: Path, invoke, monkeypatch) -> None:
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    path = pair / HALF
    path.write_text(path.read_text().replace(f"  conflict:\n{OWNERS}", ""))
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "two_way.conflict is required" in result.output
    assert "Traceback" not in result.output
