"""Test fixtures for connector plugins, the ones the built-in connectors' tests rest on.

In a plugin's ``conftest.py``::

    pytest_plugins = ["core.testing"]

then, in a test::

    def test_pledges_reach_virtuous(connector_emulator, tmp_path):
        connector_emulator("virtuous")                 # a registered emulator, by service
        connector_emulator(PledgesSandbox())           # or your own SandboxEmulator
        run = run_recipe(RECIPES / "pledges-to-virtuous.yaml", state=tmp_path / "state.db")
        assert run.exit_code == 0, run.stderr
        assert run.outcomes["written"] == 4

Each emulator runs on 127.0.0.1 for the test, seeded with its sample data (or ``seed=``), and
the variables that point recipes at it (``VIRTUOUS_BASE_URL``, ``VIRTUOUS_API_KEY``) are set
until the test ends. :func:`run_recipe` runs ``connector run RECIPE --json`` in the test's
process, as a user would type it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.sandbox import SandboxEmulator
from core.sandbox.fleet import Served, registered_emulators, serving

__all__ = ["RecipeRun", "connector_emulator", "invoke_cli", "run_recipe"]

#: Starts an emulator: ``start(name_or_emulator, *, seed=None, faults=False) -> Served``.
StartEmulator = Callable[..., Served]


@pytest.fixture
def connector_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[StartEmulator]:
    """Start emulators for this test, each with its variables set; stopped when it ends.

    ``start("stripe")`` starts a registered emulator by its service name; ``start(emulator)`` a
    :class:`~core.sandbox.SandboxEmulator` instance. ``seed=`` replaces the sample data (the
    body of ``POST /_emulator/seed``), ``faults=True`` switches on the sandbox's faults. The
    returned object has ``url``, ``variables()`` and ``control(method, what, body)`` for the
    emulator's ``/_emulator/`` control plane.
    """
    with ExitStack() as stack:

        def start(
            emulator: str | SandboxEmulator,
            *,
            seed: Mapping[str, Any] | None = None,
            faults: bool = False,
        ) -> Served:
            if isinstance(emulator, str):
                emulator = _registered(emulator)
            seeds = {emulator.name: json.dumps(seed)} if seed is not None else None
            (served,) = stack.enter_context(serving([emulator], seeds=seeds, faults=faults))
            for name, value in served.variables().items():
                monkeypatch.setenv(name, value)
            return served

        yield start


def _registered(name: str) -> SandboxEmulator:
    from core.plugins import load_plugin_manager

    emulator: SandboxEmulator = registered_emulators(load_plugin_manager().pm).get(name)()
    return emulator


@dataclass
class RecipeRun:
    """What ``connector run RECIPE --json`` did: its exit code, its report and its output."""

    exit_code: int
    stdout: str
    stderr: str
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def outcomes(self) -> dict[str, int]:
        """Records by outcome (``written``, ``unchanged``, ``invalid``...)."""
        outcomes: dict[str, int] = self.report.get("outcomes", {})
        return outcomes


def invoke_cli(*args: str | Path) -> tuple[int, str, str]:
    """``connector ARGS...`` in this process: exit code, stdout, stderr."""
    from click.testing import CliRunner

    from core.cli import Session, with_plugin_commands

    session = Session()
    result = CliRunner().invoke(with_plugin_commands(session), [str(a) for a in args], obj=session)
    return result.exit_code, result.stdout, result.stderr


def run_recipe(recipe: str | Path, *args: str, state: str | Path | None = None) -> RecipeRun:
    """Run ``recipe`` once (``args`` are more ``connector run`` options, such as ``--limit``);
    ``state`` is its state database (default: ``.connector/`` beside the recipe)."""
    extra = ["--state", str(state)] if state is not None else []
    code, stdout, stderr = invoke_cli("run", recipe, "--json", *args, *extra)
    try:
        report = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        report = {}
    return RecipeRun(code, stdout, stderr, report if isinstance(report, dict) else {})
