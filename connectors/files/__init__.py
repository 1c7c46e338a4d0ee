"""CSV and JSON Lines files, as sources and as sinks."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.files.csv_file import CsvSink, CsvSource
from connectors.files.jsonl_file import JsonlSink, JsonlSource
from core.hookspecs import hookimpl
from core.sink import Sink
from core.source import Source


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [CsvSource, JsonlSource]


@hookimpl
def connector_register_sinks() -> Iterable[type[Sink]]:
    return [CsvSink, JsonlSink]
