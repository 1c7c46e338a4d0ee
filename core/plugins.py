"""The plugin manager: built-in connectors by module path, then entry points.

Built-ins register through the same hooks a third party uses. Loading order: built-ins, then the
``connector`` entry-point group. Switches:

- ``CONNECTOR_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points;
- ``CONNECTOR_DISABLE_PLUGINS=a,b`` blocks plugins by name;
- ``CONNECTOR_TRACE_PLUGINS=1`` prints every hook call to stderr.

A plugin that fails to import is recorded in ``Registry.failures`` and reported, never fatal.

Loading a plugin imports its module and nothing more: a plugin's module imports its sources,
sinks and service SDKs inside its hooks (``connectors/stripe/__init__.py``), so a command that
builds no registry (``--version``, ``--help``) pays for none of them, and one that does
(``validate``) loads the SDKs of none: those are imported by the code that calls the service.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from typing import NamedTuple

import pluggy

from core import hookspecs
from core.registry import PluginFailure, Registry

DEFAULT_PLUGINS = (
    "core.default_transforms",
    "connectors.files",
    "connectors.virtuous",
    "connectors.stripe",
    "connectors.mailchimp",
    "connectors.givebutter",
    "connectors.donorbox",
    "connectors.http",
)

ENTRY_POINT_GROUP = hookspecs.PROJECT


class Plugins(NamedTuple):
    """The plugin manager, and the plugins that could not be loaded."""

    pm: pluggy.PluginManager
    failures: list[PluginFailure]


def load_plugins(*, load_entrypoints: bool = True) -> tuple[pluggy.PluginManager, Registry]:
    """Build the plugin manager and the registry of components it provides."""
    pm, failures = load_plugin_manager(load_entrypoints=load_entrypoints)
    return pm, Registry.build(pm, failures)


def load_plugin_manager(*, load_entrypoints: bool = True) -> Plugins:
    """Import and register every plugin, without asking any for its components."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = {n.strip() for n in os.environ.get("CONNECTOR_DISABLE_PLUGINS", "").split(",")}
    for name in blocked - {""}:
        pm.set_blocked(name)
    failures: list[PluginFailure] = []
    for module_path in DEFAULT_PLUGINS:
        if module_path in blocked:
            continue
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as error:
            if error.name == module_path:
                continue  # a built-in that this checkout does not ship
            failures.append(PluginFailure(module_path, _describe(error)))
            continue
        except Exception as error:  # noqa: BLE001 - a broken plugin must not take the host down
            failures.append(PluginFailure(module_path, _describe(error)))
            continue
        pm.register(module, module_path)
    autoload_off = os.environ.get("CONNECTOR_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
    if load_entrypoints and not autoload_off:
        failures.extend(_load_entry_points(pm, blocked))
    pm.check_pending()
    if os.environ.get("CONNECTOR_TRACE_PLUGINS", "") not in ("", "0"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return Plugins(pm, failures)


def _load_entry_points(pm: pluggy.PluginManager, blocked: set[str]) -> list[PluginFailure]:
    failures = []
    for entry_point in _entry_points(ENTRY_POINT_GROUP):
        if entry_point.name in blocked or pm.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
            pm.register(plugin, entry_point.name)
        except Exception as error:  # noqa: BLE001 - reported by `connector plugins` and errors
            failures.append(PluginFailure(entry_point.name, _describe(error)))
    return failures


def _entry_points(group: str) -> Iterator[importlib.metadata.EntryPoint]:
    """The ``group`` entry points of every installed distribution. Each one's entry_points.txt
    is parsed only when its text names the group: parsing every file's every entry point (as
    ``importlib.metadata.entry_points`` does) is most of the scan, for the few that hold ours."""
    header = f"[{group}]"
    for dist in importlib.metadata.distributions():
        text = dist.read_text("entry_points.txt")
        if text and header in text:
            yield from dist.entry_points.select(group=group)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
