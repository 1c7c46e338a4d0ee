"""Every recipe shipped in recipes/ validates, and its inline tests pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.recipe import load_recipe
from core.recipe_tests import run_recipe_tests
from core.registry import Registry

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))

# Placeholder credentials: recipes read secrets from the environment.
FAKE_ENV = {
    "VIRTUOUS_API_KEY": "test-virtuous-key",
    "STRIPE_API_KEY": "sk_test_placeholder",
    "MAILCHIMP_API_KEY": "placeholder-us1",
    "GIVEBUTTER_API_KEY": "placeholder",
    "DONORBOX_EMAIL": "ops@example.org",
    "DONORBOX_API_KEY": "placeholder",
    "MAILCHIMP_LIST_ID": "placeholder-list",
}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates_and_its_tests_pass(path: Path, registry: Registry) -> None:
    recipe = load_recipe(path, registry, env=FAKE_ENV)
    results = run_recipe_tests(recipe)
    assert recipe.model.tests, f"{path.name} has no inline tests"
    failures = [(r.name, r.problems) for r in results if not r.passed]
    assert not failures


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_connector_test_runs_without_any_secret(path: Path, invoke, monkeypatch) -> None:
    for name in FAKE_ENV:
        monkeypatch.delenv(name, raising=False)
    result = invoke("test", path)
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout
