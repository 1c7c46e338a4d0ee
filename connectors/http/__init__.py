"""Any JSON API, declared in a recipe: ``http.json``.

The source is registered by name and imported when a recipe uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.hookspecs import hookimpl
from core.registry import Lazy


@hookimpl
def connector_register_sources() -> Iterable[Lazy]:
    return [Lazy("http.json", "connectors.http.json_source:JsonSource")]
