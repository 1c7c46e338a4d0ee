"""Fixtures shared by the whole suite: plugins without entry points, recipes in tmp dirs."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

from core.cli import Session, with_plugin_commands
from core.plugins import load_plugins
from core.registry import Registry

# Speed is for the benchmarks (bench/) to judge: on a loaded machine an example that takes longer
# than hypothesis's default 200 ms deadline is still a right answer.
settings.register_profile("connector", deadline=None)
settings.load_profile("connector")

# The fixtures a plugin author's tests use (docs/plugins.md), loaded as a plugin loads them.
pytest_plugins = ["core.testing"]


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_plugins(load_entrypoints=False)[1]


@pytest.fixture(autouse=True)
def _no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed third-party plugins must not change what the suite sees."""
    monkeypatch.setenv("CONNECTOR_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("CONNECTOR_STATE_URL", raising=False)
    monkeypatch.delenv("CONNECTOR_RATE_URL", raising=False)


@pytest.fixture(autouse=True)
def _private_lock_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Recipes' own locks live in a per-user directory: the suite's stay in its temp folder."""
    monkeypatch.setenv("CONNECTOR_LOCK_DIR", str(tmp_path_factory.getbasetemp() / "locks"))


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe (dedented YAML) into the test's directory and return its path."""

    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run the CLI in-process, as a user would type it."""

    def run(*args: str | Path) -> Result:
        session = Session()
        group = with_plugin_commands(session)
        return CliRunner().invoke(group, [str(a) for a in args], obj=session)

    return run
