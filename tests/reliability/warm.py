"""Imported once by the fork server that starts the killed runs: every module a run needs is
loaded before the fork, so a killed run starts in milliseconds instead of a second."""

import importlib
import pkgutil

import connectors
import core
from tests.reliability import kill_points  # noqa: F401

for package in (core, connectors):
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if ".emulator" not in module.name:
            importlib.import_module(module.name)
