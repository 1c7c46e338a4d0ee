"""core.testing: the fixtures a plugin author's tests use (tests/conftest.py loads them as
``pytest_plugins``, as a plugin's conftest.py does)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from connectors.givebutter.emulator.sandbox import GivebutterSandbox
from core.testing import run_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_a_recipe_runs_against_a_registered_emulator(connector_emulator, tmp_path) -> None:
    virtuous = connector_emulator("virtuous")
    shutil.copytree(RECIPES / "data", tmp_path / "data")
    recipe = Path(shutil.copy(RECIPES / "csv-donations-to-virtuous-gifts.yaml", tmp_path))
    first = run_recipe(recipe)
    assert first.exit_code == 0, first.stderr
    assert first.outcomes["written"] == 4
    assert run_recipe(recipe).outcomes["unchanged"] == 4
    assert len(virtuous.control("GET", "state")["pending"]) == 4  # in Virtuous's import


class Pledges(GivebutterSandbox):
    """A plugin's own emulator (here Givebutter's, under another name and variable)."""

    name = "pledges"

    def variables(self, url: str) -> dict[str, str]:
        return {"PLEDGES_URL": url}


def test_a_plugins_own_emulator_with_its_own_seed(connector_emulator) -> None:
    served = connector_emulator(Pledges(), seed={"count": 3})
    assert os.environ["PLEDGES_URL"] == served.url
    assert len(served.control("GET", "state")["transactions"]) == 3


def test_a_failed_run_says_why(tmp_path) -> None:
    recipe = tmp_path / "broken.yaml"
    recipe.write_text(
        "version: 1\nname: broken\nsource: {use: file.cvs}\nsink: {use: file.jsonl}\n"
    )
    run = run_recipe(recipe)
    assert run.exit_code == 2
    assert "unknown source 'file.cvs'" in run.stderr
    assert run.outcomes == {}
