"""Start-up: commands that reach no service load no service SDK, and ``--version`` loads nothing.

Each command runs in a fresh interpreter that writes the names of the modules it imported when it
exits; what a module costs is measured by ``bench/startup.py``, not here.
"""

from __future__ import annotations

import ast
import gc
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core import startup

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"

# Run the CLI, then list every module the process imported, whatever way the command ended.
PROBE = """
import os, sys
try:
    from core.cli import main
    main()
finally:
    with open(os.environ["PROBE_OUT"], "w", encoding="utf-8") as out:
        out.write("\\n".join(sorted(sys.modules)))
"""

#: The services' SDKs (``requests`` comes with the Mailchimp one).
SERVICE_SDKS = ("stripe", "mailchimp_marketing", "requests")
#: What ``--version`` has no use for: terminal output, models, HTTP, the emulators' server.
HEAVY = ("rich", "pydantic", "httpx", "starlette", "uvicorn", "yaml", "sqlite3", "connectors")

PLACEHOLDERS = {
    "STRIPE_API_KEY": "sk_test_placeholder",
    "VIRTUOUS_API_KEY": "placeholder-virtuous-key",
    "MAILCHIMP_API_KEY": "placeholder0mailchimp-us21",
    "MAILCHIMP_LIST_ID": "list-placeholder",
    "DONORBOX_EMAIL": "placeholder@example.org",
    "DONORBOX_API_KEY": "placeholder-donorbox-key",
    "GIVEBUTTER_API_KEY": "placeholder-givebutter-key",
}

SERVICE_RECIPES = (
    "stripe-charges-to-virtuous-gifts.yaml",
    "mailchimp-members-to-virtuous-contacts.yaml",
    "virtuous-contacts-to-mailchimp.yaml",
)


def probed(probe: str, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``connector ARGS`` under ``probe`` in a fresh interpreter; its result, and the file
    the probe writes (named by ``PROBE_OUT``)."""
    out = cwd / "probe.out"
    env = {
        **os.environ,
        **PLACEHOLDERS,
        "PYTHONPATH": str(ROOT),
        "PROBE_OUT": str(out),
        "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1",  # an installed plugin is not ours to judge
    }
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, out


def imported_by(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``connector ARGS`` in a fresh interpreter; its result and every module it imported."""
    done, out = probed(PROBE, *args, cwd=cwd)
    return done, set(out.read_text(encoding="utf-8").splitlines())


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The top packages of ``packages`` that appear in ``modules`` (submodules included)."""
    return sorted({p for p in packages for m in modules if m == p or m.startswith(p + ".")})


def test_version_loads_no_plugin_and_no_heavy_library(tmp_path: Path) -> None:
    done, modules = imported_by("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "version" in done.stdout
    assert loaded(modules, SERVICE_SDKS + HEAVY) == []


def test_help_lists_plugin_commands_without_any_service_sdk(tmp_path: Path) -> None:
    done, modules = imported_by("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "status" in done.stdout  # a command the Virtuous plugin adds
    assert loaded(modules, SERVICE_SDKS) == []


@pytest.mark.parametrize(
    "args",
    [
        ["validate", *(str(RECIPES / name) for name in SERVICE_RECIPES)],
        *(["test", str(RECIPES / name)] for name in SERVICE_RECIPES),
        ["plugins"],
    ],
    ids=["validate", *(f"test-{name.split('-')[0]}" for name in SERVICE_RECIPES), "plugins"],
)
def test_commands_that_reach_no_service_load_no_service_sdk(
    args: list[str], tmp_path: Path
) -> None:
    done, modules = imported_by(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert loaded(modules, SERVICE_SDKS) == []


def test_validate_imports_only_the_connectors_its_recipe_uses(tmp_path: Path) -> None:
    done, modules = imported_by(
        "validate", str(RECIPES / "csv-donations-to-jsonl.yaml"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "connectors.files.csv_file" in modules
    others = ("connectors.stripe", "connectors.mailchimp", "connectors.givebutter")
    # A plugin's package is imported to register its names; none of its modules is.
    assert [m for m in modules if m.startswith(others) and m not in others] == []
    # A recipe that reaches no service needs neither the HTTP client nor the token store.
    assert {"httpx", "sqlite3", "rich"} & modules == set()
    # Only a webhook source needs the webhook machinery; only `connector dlq`, its commands.
    assert "core.webhooks" not in modules
    assert "core.dlq_command" not in modules


def test_validate_of_a_virtuous_recipe_builds_no_http_client(tmp_path: Path) -> None:
    done, modules = imported_by(
        "validate", str(RECIPES / "csv-donations-to-virtuous-gifts.yaml"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "connectors.virtuous.gift_transactions" in modules
    # The sink's settings are checked; httpx and the state store come with a run's first request.
    assert {"httpx", "sqlite3"} & modules == set()
    # Neither are the queries (the designation check's read of projects), the sending of
    # gifts, the contacts' payload models, nor the webhook machinery.
    unused = (
        "connectors.virtuous.queries",
        "connectors.virtuous.transactions",
        "connectors.virtuous.contact_models",
        "core.webhooks",
    )
    assert sorted(set(unused) & modules) == []


def test_validate_of_every_shipped_recipe_builds_no_http_client(tmp_path: Path) -> None:
    recipes = sorted(str(path) for path in RECIPES.glob("*.yaml"))
    done, modules = imported_by("validate", *recipes, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # Sources, sinks and webhooks import httpx and the state store where a request is sent.
    assert {"httpx", "sqlite3"} & modules == set()


@pytest.mark.parametrize(
    "recipe", ["csv-donations-to-virtuous-gifts.yaml", "csv-donations-to-jsonl.yaml"]
)
def test_validate_of_a_valid_recipe_loads_no_suggestion_machinery(
    recipe: str, tmp_path: Path
) -> None:
    done, modules = imported_by("validate", str(RECIPES / recipe), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # "did you mean" (difflib) is asked only when a name is wrong: bench/startup.py times this.
    assert "difflib" not in modules


# Run the CLI counting the collector's passes from main() on, then say what the process ended
# with.
GC_PROBE = """
import gc, json, os, sys
passes = []
gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
try:
    from core.cli import main
    passes.clear()
    main()
finally:
    with open(os.environ["PROBE_OUT"], "w", encoding="utf-8") as out:
        json.dump({"passes": len(passes), "threshold": gc.get_threshold(),
                   "frozen": gc.get_freeze_count(), "unfrozen": len(gc.get_objects())}, out)
"""


def collector_during(*args: str, cwd: Path) -> dict[str, object]:
    done, out = probed(GC_PROBE, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))
    return result


def test_the_collector_waits_until_start_up_is_over(tmp_path: Path) -> None:
    seen = collector_during(
        "validate", str(RECIPES / "csv-donations-to-virtuous-gifts.yaml"), cwd=tmp_path
    )
    # Python's default thresholds make about sixty passes over what start-up builds.
    assert seen["passes"] == 0


def test_a_command_collects_as_usual_once_its_recipe_is_loaded(tmp_path: Path) -> None:
    seen = collector_during("test", str(RECIPES / "csv-donations-to-jsonl.yaml"), cwd=tmp_path)
    assert seen["threshold"] == list(gc.get_threshold())  # Python's defaults, for the run


def test_the_process_ends_with_nothing_for_the_shutdowns_collection(tmp_path: Path) -> None:
    seen = collector_during(
        "validate", str(RECIPES / "csv-donations-to-virtuous-gifts.yaml"), cwd=tmp_path
    )
    frozen, unfrozen = seen["frozen"], seen["unfrozen"]
    assert isinstance(frozen, int)
    assert isinstance(unfrozen, int)
    # What the command built is frozen: Python's last collection, as the process ends, passes
    # it by (it took longer than the whole of validate's own work).
    assert frozen > 10_000
    assert unfrozen < frozen / 100


def pyyamls_non_printable() -> str:
    """The text of ``yaml.reader.Reader.NON_PRINTABLE``, as PyYAML's source writes it."""
    tree = ast.parse(Path(yaml.reader.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "NON_PRINTABLE":
            assert isinstance(node.value, ast.Call)
            text = ast.literal_eval(node.value.args[0])
            assert isinstance(text, str)
            return text
    raise AssertionError("yaml.reader no longer sets NON_PRINTABLE")


def test_pyyamls_printable_check_is_spared_its_compile_and_keeps_its_meaning() -> None:
    # PyYAML still writes the set as we quote it (were it not, our cache entry would go unused).
    assert pyyamls_non_printable() == startup.PYYAML_NON_PRINTABLE
    every_character = "".join(map(chr, range(sys.maxunicode + 1)))
    theirs = re.compile(startup.PYYAML_NON_PRINTABLE + "(?#not from the cache)")
    ours = re.compile(startup.NON_PRINTABLE)
    assert ours.findall(every_character) == theirs.findall(every_character)


def test_pyyamls_reader_still_refuses_a_control_character_after_start_up() -> None:
    script = (
        "from core import startup; startup.begin(); import yaml; "
        "assert yaml.reader.Reader.NON_PRINTABLE.pattern == startup.NON_PRINTABLE; "
        "yaml.load('name: a\\x07b', Loader=yaml.SafeLoader)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "special characters are not allowed" in done.stderr
    assert "#x0007" in done.stderr


def test_validate_of_a_virtuous_gift_recipe_loads_no_run_machinery(tmp_path: Path) -> None:
    done, modules = imported_by(
        "validate", str(RECIPES / "csv-donations-to-virtuous-gifts.yaml"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    # validate checks the sink's settings and the map against its payload models. The designation
    # check (its projects and their matching), the recovery of gifts a stopped run left in
    # flight and the service's description (rate limit, retries) come with a run: together they
    # cost every validate several milliseconds.
    run_only = (
        "connectors.virtuous.designations",
        "connectors.virtuous.recovery",
        "core.http.service",
    )
    assert sorted(set(run_only) & modules) == []
