"""The plugin-author API: everything a connector needs, importable from ``core``.

A connector plugin is a module with hook implementations::

    from core import Source, hookimpl

    class Donations(Source):
        name = "myplatform.donations"
        def read(self, cursor): ...

    @hookimpl
    def connector_register_sources():
        return [Donations]

Each name is imported when it is first used, not when ``core`` is: every ``core.*`` module
imports this package first, and ``connector --version`` must not pay for pydantic and SQLite.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.context import Context
    from core.errors import (
        AuthError,
        ConnectorError,
        FatalError,
        InputError,
        InvalidRecord,
        MappingError,
        PluginError,
        RecipeError,
        RetriableError,
        SkippableError,
    )
    from core.hookspecs import hookimpl
    from core.outcomes import LedgerEntry, Outcome, WriteItem, WriteResult
    from core.sink import Sink
    from core.source import NoSettings, Record, Source, Unreadable

#: Where each exported name is defined.
_HOMES = {
    "AuthError": "core.errors",
    "ConnectorError": "core.errors",
    "Context": "core.context",
    "FatalError": "core.errors",
    "InputError": "core.errors",
    "InvalidRecord": "core.errors",
    "LedgerEntry": "core.outcomes",
    "MappingError": "core.errors",
    "NoSettings": "core.source",
    "Outcome": "core.outcomes",
    "PluginError": "core.errors",
    "RecipeError": "core.errors",
    "Record": "core.source",
    "RetriableError": "core.errors",
    "Sink": "core.sink",
    "SkippableError": "core.errors",
    "Source": "core.source",
    "Unreadable": "core.source",
    "WriteItem": "core.outcomes",
    "WriteResult": "core.outcomes",
    "hookimpl": "core.hookspecs",
}

__all__ = [
    "AuthError",
    "ConnectorError",
    "Context",
    "FatalError",
    "InputError",
    "InvalidRecord",
    "LedgerEntry",
    "MappingError",
    "NoSettings",
    "Outcome",
    "PluginError",
    "RecipeError",
    "Record",
    "RetriableError",
    "Sink",
    "SkippableError",
    "Source",
    "Unreadable",
    "WriteItem",
    "WriteResult",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'core' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value
