"""``file.jsonl``: one JSON object per line, as a source and as a sink."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.files.common import (
    AppendLog,
    FileSinkSettings,
    FileSourceSettings,
    missing_key,
    open_input,
    record_key,
    undecodable,
)
from core.json_numbers import parse_json, to_json
from core.outcomes import Outcome, WriteItem, WriteResult
from core.sink import Sink
from core.source import Record, Source, Unreadable


class JsonlSource(Source):
    """Objects of a JSON Lines file; a line that is not a JSON object is dead-lettered.

    Numbers with a fraction are read as exact decimals (:class:`JsonNumber`), never floats.
    """

    name: ClassVar[str] = "file.jsonl"
    Settings: ClassVar[type[BaseModel]] = FileSourceSettings
    description: ClassVar[str] = "objects of a JSON Lines file"
    settings: FileSourceSettings

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        path = self.context.path(self.settings.path)
        with open_input(path, self.settings.encoding) as handle:
            try:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield self._parse(line, number)
            except UnicodeDecodeError as error:
                raise undecodable(path, self.settings.encoding, error) from None

    def key(self, record: Mapping[str, Any]) -> str:
        return record_key(record, self.settings.key)

    def _parse(self, line: str, number: int) -> Record | Unreadable:
        try:
            value = parse_json(line)
        except json.JSONDecodeError as error:
            return Unreadable(f"line:{number}", f"line {number} is not valid JSON: {error}", line)
        if not isinstance(value, dict):
            return Unreadable(f"line:{number}", f"line {number} is not a JSON object", line)
        if missing_key(value, self.settings.key):
            reason = (
                f"line {number} has no {self.settings.key!r}, the source's key; its fields:"
                f" {', '.join(map(str, value)) or '(none)'}"
            )
            return Unreadable(f"line:{number}", reason, line)
        return value


class JsonlSink(Sink):
    """Appends one JSON object per payload. A changed record is appended again."""

    name: ClassVar[str] = "file.jsonl"
    Settings: ClassVar[type[BaseModel]] = FileSinkSettings
    supports_update: ClassVar[bool] = True
    description: ClassVar[str] = "objects appended to a JSON Lines file"
    settings: FileSinkSettings

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        self.log = AppendLog(
            self.context.path(self.settings.path), self.settings.encoding, self.settings.if_exists
        )
        self.log.open(checkpoint)

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        assert self.log.handle is not None
        for item in batch:
            self.log.handle.write(to_json(item.payload) + "\n")
        self.log.sync()
        return [
            WriteResult(item.key, Outcome.UPDATED if item.is_update else Outcome.WRITTEN)
            for item in batch
        ]

    def checkpoint(self) -> dict[str, Any] | None:
        return {"size": self.log.size()}

    def close(self) -> None:
        if hasattr(self, "log"):
            self.log.close()
