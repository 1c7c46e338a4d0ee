"""Plugins: built-ins through the hooks, a real third-party install, broken plugins reported."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pluggy
import pytest

from core import Source, hookimpl
from core.errors import PluginError
from core.plugins import load_plugins
from core.registry import Lazy, Registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "connector-example"


def test_built_ins_register_through_the_hooks(registry: Registry) -> None:
    assert registry.sources.owners["file.csv"] == "connectors.files"
    assert registry.transforms.owners["upper"] == "core.default_transforms"


def test_two_plugins_claiming_one_name_is_an_error_naming_both() -> None:
    class Twin(Source):
        name = "file.csv"

        def read(self, cursor):  # pragma: no cover - never read
            return iter(())

    class Impostor:
        @hookimpl
        def connector_register_sources(self) -> Iterable[type[Source]]:
            return [Twin]

    pm, _ = load_plugins(load_entrypoints=False)
    pm.register(Impostor(), "impostor")
    with pytest.raises(PluginError, match="'connectors.files' and 'impostor'"):
        Registry.build(pm)


def test_a_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def connector_register_source(self) -> list[object]:
            return []

    pm, _ = load_plugins(load_entrypoints=False)
    pm.register(Typo(), "typo")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(monkeypatch) -> None:
    class BrokenDistribution(importlib.metadata.Distribution):
        """Installed, naming a plugin module that is not there."""

        def read_text(self, filename: str) -> str | None:
            if filename == "entry_points.txt":
                return "[console_scripts]\nb = x:y\n[connector]\nbroken = connector_broken\n"
            return None

        def locate_file(self, path: str | os.PathLike[str]) -> Path:
            return Path(path)

    class OtherDistribution(BrokenDistribution):
        def read_text(self, filename: str) -> str | None:
            return "[console_scripts]\nother = x:y\n" if filename == "entry_points.txt" else None

    monkeypatch.delenv("CONNECTOR_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setattr(
        "importlib.metadata.distributions", lambda: [OtherDistribution(), BrokenDistribution()]
    )
    _, registry = load_plugins()
    assert "file.csv" in registry.sources
    assert [f.name for f in registry.failures] == ["broken"]
    assert "failed to load" in (registry.failure_hint() or "")


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the example plugin distribution into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _connector(
    site: Path, *args: str, cwd: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **extra_env}
    env.pop("CONNECTOR_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-c", "from core.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_example_plugin_works_through_its_entry_point(installed_example, tmp_path) -> None:
    listed = _connector(installed_example, "plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "example.pledges" in listed.stdout
    recipe = tmp_path / "pledges.yaml"
    recipe.write_text(
        "version: 1\nname: pledges\nsource: {use: example.pledges, with: {count: 4}}\n"
        "map: {id: record.id, amount: record.cents | example_cents}\n"
        "sink: {use: file.jsonl, with: {path: out.jsonl}}\n"
    )
    first = _connector(installed_example, "run", str(recipe), "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["outcomes"]["written"] == 4
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(lines[-1]) == {"id": "p-4", "amount": "40"}
    again = _connector(installed_example, "run", str(recipe), "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["records_read"] == 0  # the cursor remembered p-4


def test_blocking_a_plugin_by_name_hides_it(installed_example, tmp_path) -> None:
    blocked = _connector(
        installed_example, "plugins", cwd=tmp_path, CONNECTOR_DISABLE_PLUGINS="example"
    )
    assert blocked.returncode == 0, blocked.stderr
    assert "file.csv" in blocked.stdout
    assert "example.pledges" not in blocked.stdout


class _LazyPlugin:
    """Registers one good source by reference, one whose module is missing, one misnamed."""

    @hookimpl
    def connector_register_sources(self) -> Iterable[Lazy]:
        return [
            Lazy("lazy.csv", "connectors.files.csv_file:CsvSource"),  # named file.csv
            Lazy("lazy.missing", "connector_not_installed.sources:Missing"),
        ]

    @hookimpl
    def connector_register_transforms(self) -> dict[str, Lazy]:
        return {"lazy_upper": Lazy("lazy_upper", "core.transforms:upper")}


def test_a_lazy_component_is_imported_only_when_used_and_a_broken_one_names_its_plugin() -> None:
    pm, _ = load_plugins(load_entrypoints=False)
    pm.register(_LazyPlugin(), "lazy")
    registry = Registry.build(pm)  # nothing imported yet, so nothing fails yet
    assert "lazy.missing" in registry.sources
    assert registry.transforms.get("lazy_upper")("abc") == "ABC"
    with pytest.raises(PluginError, match=r"'lazy.missing' of plugin 'lazy'.*connector_not_in"):
        registry.sources.get("lazy.missing")
    with pytest.raises(PluginError, match=r"registered 'lazy.csv' as .*CsvSource.*'file.csv'"):
        registry.sources.get("lazy.csv")
    assert registry.sources.get("file.csv").name == "file.csv"


def test_a_recipe_naming_a_broken_lazy_source_exits_3_naming_the_plugin(
    write_recipe, tmp_path
) -> None:
    from click.testing import CliRunner

    from core.cli import Session, with_plugin_commands

    session = Session()
    session.pm.register(_LazyPlugin(), "lazy")
    recipe = write_recipe(
        "version: 1\nname: broken\nsource: {use: lazy.missing}\n"
        "map: {id: record.id}\nsink: {use: file.jsonl, with: {path: out.jsonl}}\n"
    )
    group = with_plugin_commands(session)
    result = CliRunner().invoke(group, ["validate", str(recipe)], obj=session)
    assert result.exit_code == 3
    assert "plugin 'lazy'" in result.output
    assert "connector_not_installed" in result.output
