"""Any JSON API, declared in a recipe: ``http.json``."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.http.json_source import JsonSource
from core.hookspecs import hookimpl
from core.source import Source


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [JsonSource]
