"""The plugin-author API: everything a connector needs, importable from ``core``.

A connector plugin is a module with hook implementations::

    from core import Source, hookimpl

    class Donations(Source):
        name = "myplatform.donations"
        def read(self, cursor): ...

    @hookimpl
    def connector_register_sources():
        return [Donations]
"""

from __future__ import annotations

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
