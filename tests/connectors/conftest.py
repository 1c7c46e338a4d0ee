"""Helpers for connector tests that run recipes against an emulator through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from core.emulation import EmulatorServer

Runs = Callable[[str], tuple[Path, Callable[[], dict[str, Any]]]]


@pytest.fixture
def recipe_runs(write_recipe: Callable[..., Path], invoke: Callable[..., Result]) -> Runs:
    """Write a recipe; get its directory and a function that runs it once, successfully, and
    returns the JSON report."""

    def prepare(recipe: str) -> tuple[Path, Callable[[], dict[str, Any]]]:
        path = write_recipe(recipe)

        def run() -> dict[str, Any]:
            result = invoke("run", path, "--json")
            assert result.exit_code == 0, result.output
            report: dict[str, Any] = json.loads(result.stdout)
            return report

        return path.parent, run

    return prepare


def fresh_state(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """The state of the emulator `server` runs, emptied for this test, with the recipe's
    variables `env` set: one server serves a whole module, so each test starts from nothing."""
    app: Any = server.app
    app.state.emulator.reset()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return app.state.emulator


def assert_refused_without_showing(
    result: Result, service: str, said: str, key: str, folder: Path
) -> None:
    """The run stopped at `service`'s refusal of `key`, quoting what the service `said`, and the
    key shows neither in what the run printed nor in the state it had opened under `folder`."""
    assert result.exit_code == 3
    assert f"{service} refused the credential (401)" in result.stderr
    assert said in result.stderr
    assert key not in result.output
    files = [path for path in (folder / ".connector").rglob("*") if path.is_file()]
    assert files  # the run opened its state before it was refused
    assert all(key.encode() not in path.read_bytes() for path in files)
