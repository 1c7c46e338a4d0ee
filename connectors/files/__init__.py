"""CSV and JSON Lines files, as sources and as sinks.

Each component is registered by name and imported when a recipe uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.hookspecs import hookimpl
from core.registry import Lazy


@hookimpl
def connector_register_sources() -> Iterable[Lazy]:
    return [
        Lazy("file.csv", "connectors.files.csv_file:CsvSource"),
        Lazy("file.jsonl", "connectors.files.jsonl_file:JsonlSource"),
    ]


@hookimpl
def connector_register_sinks() -> Iterable[Lazy]:
    return [
        Lazy("file.csv", "connectors.files.csv_file:CsvSink"),
        Lazy("file.jsonl", "connectors.files.jsonl_file:JsonlSink"),
    ]
