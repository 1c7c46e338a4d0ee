"""``connector init``: the shipped recipes as templates, written with their inputs and an
``.env.example``; what it writes passes its tests, and validates once the variables are set."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.init import templates

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))


def test_it_lists_one_template_per_shipped_recipe_with_its_description(invoke) -> None:
    result = invoke("init")
    assert result.exit_code == 0, result.output
    for name in SHIPPED:
        assert re.search(rf"^{name}$", result.output, re.M), name
    assert "Succeeded Stripe charges become Virtuous gift transactions" in result.output


def test_a_recipe_added_to_the_recipes_folder_is_a_template(invoke, tmp_path, monkeypatch) -> None:
    (tmp_path / "pledges.yaml").write_text("name: pledges\ndescription: Pledges, somewhere.\n")
    monkeypatch.setenv("CONNECTOR_RECIPES", str(tmp_path))
    assert list(templates()) == ["pledges"]
    assert "Pledges, somewhere." in invoke("init").output


@pytest.mark.parametrize("name", SHIPPED)
def test_the_written_recipe_passes_its_tests_and_validates_with_its_variables_set(
    invoke, tmp_path, monkeypatch, name: str
) -> None:
    result = invoke("init", name, "--dir", tmp_path / "mine")
    assert result.exit_code == 0, result.output
    recipe = tmp_path / "mine" / f"{name}.yaml"
    tested = invoke("test", recipe)
    assert tested.exit_code == 0, tested.output
    example = (tmp_path / "mine" / ".env.example").read_text()
    required = re.findall(r"^([A-Z_][A-Z0-9_]*)=$", example, re.M)
    for variable in required:
        monkeypatch.delenv(variable, raising=False)
    unset = invoke("validate", recipe)  # validate needs no secret, so it runs in CI
    assert unset.exit_code == 0, unset.output
    # A placeholder in the shape every service's key validator takes (Mailchimp's ends in -dc).
    (tmp_path / "mine" / ".env").write_text("".join(f"{v}=example-us1\n" for v in required))
    validated = invoke("validate", recipe)
    assert validated.exit_code == 0, validated.output


def test_the_inputs_a_template_reads_are_written_beside_it(invoke, tmp_path) -> None:
    result = invoke("init", "csv-donations-to-virtuous-gifts.yaml", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    shipped = (ROOT / "recipes" / "data" / "donations.csv").read_text()
    assert (tmp_path / "data" / "donations.csv").read_text() == shipped
    example = (tmp_path / ".env.example").read_text()
    assert "\nVIRTUOUS_API_KEY=\n" in example
    assert "\n# VIRTUOUS_BASE_URL=https://api.virtuoussoftware.com\n" in example


def test_a_second_template_adds_only_its_new_variables(invoke, tmp_path) -> None:
    invoke("init", "csv-donations-to-virtuous-gifts", "--dir", tmp_path)
    invoke("init", "stripe-charges-to-virtuous-gifts", "--dir", tmp_path)
    example = (tmp_path / ".env.example").read_text()
    assert example.count("VIRTUOUS_API_KEY=") == 1
    assert "\nSTRIPE_API_KEY=\n" in example


def test_an_existing_recipe_is_not_overwritten_without_force(invoke, tmp_path) -> None:
    (tmp_path / "virtuous-gifts-to-csv.yaml").write_text("mine")
    refused = invoke("init", "virtuous-gifts-to-csv", "--dir", tmp_path)
    assert refused.exit_code == 2
    assert "already exists" in refused.stderr
    assert (tmp_path / "virtuous-gifts-to-csv.yaml").read_text() == "mine"
    forced = invoke("init", "virtuous-gifts-to-csv", "--dir", tmp_path, "--force")
    assert forced.exit_code == 0
    assert (tmp_path / "virtuous-gifts-to-csv.yaml").read_text() != "mine"


def test_an_unknown_template_is_refused_with_the_choices(invoke) -> None:
    result = invoke("init", "paypal-to-virtuous")
    assert result.exit_code == 2
    assert "unknown template 'paypal-to-virtuous'" in result.stderr
    assert "stripe-charges-to-virtuous-gifts" in result.stderr


def test_a_webhook_template_is_followed_by_register_and_serve(invoke, tmp_path) -> None:
    result = invoke("init", "stripe-webhooks-to-virtuous-gifts", "--dir", tmp_path / "hooks")
    assert result.exit_code == 0, result.output
    recipe = tmp_path / "hooks" / "stripe-webhooks-to-virtuous-gifts.yaml"
    assert (
        f"connector webhooks register {recipe} --url "
        "https://YOUR-HOST/hooks/stripe-webhooks-to-virtuous-gifts"
    ) in result.output
    assert f"connector serve {recipe}" in result.output
    assert f"connector run {recipe}" not in result.output  # a run only polls its reconcile:


def test_no_templates_is_an_error_naming_the_folder(invoke, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONNECTOR_RECIPES", str(tmp_path))
    result = invoke("init")
    assert result.exit_code == 2
    assert f"no templates in {tmp_path} (set CONNECTOR_RECIPES)" in result.stderr


def test_a_non_editable_install_ships_the_recipes_as_templates(tmp_path) -> None:
    """`pip install .` (docs/deploy.md, deploy/Dockerfile): the wheel holds recipes/ and the
    files they name, and `connector init`, run from the installed code, lists them."""
    source = tmp_path / "source"  # a copy: building writes build/ beside the sources
    for name in ("core", "connectors", "recipes"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", tmp_path / "dist", source],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("connector-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"connector_recipes/{name}.yaml" for name in SHIPPED} <= names
    assert "connector_recipes/data/donations.csv" in names
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)  # what `pip install` puts in site-packages
    listed = subprocess.run(
        [sys.executable, "-c", "from core.cli import main; main()", "init"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "stripe-charges-to-virtuous-gifts" in listed.stdout
