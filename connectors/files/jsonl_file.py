"""``file.jsonl``: one JSON object per line, as a source and as a sink."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.files.common import (
    AppendLog,
    FileSinkSettings,
    FileSource,
    FileSourceSettings,
    bounded_lines,
    missing_key,
    open_input,
    record_key,
    too_long,
    undecodable,
    unwritable,
)
from core import limits
from core.digest import exact_json_encoder
from core.json_numbers import parse_bounded_json
from core.outcomes import Outcome, WriteItem, WriteResult
from core.sink import Sink
from core.source import Record, Unreadable


class JsonlSource(FileSource):
    """Objects of a JSON Lines file; a line that is not a JSON object is dead-lettered.

    Numbers with a fraction are read as exact decimals (:class:`JsonNumber`), never floats. A
    line no record can hold (over the limits of :mod:`core.limits`, or text that is not Unicode)
    is dead-lettered too, naming its line, and the lines after it are read as usual.
    """

    name: ClassVar[str] = "file.jsonl"
    Settings: ClassVar[type[BaseModel]] = FileSourceSettings
    description: ClassVar[str] = "objects of a JSON Lines file"
    settings: FileSourceSettings

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        path = self.context.path(self.settings.path)
        with open_input(path, self.settings.encoding) as handle:
            try:
                for number, line in bounded_lines(handle):
                    if line is None:
                        yield Unreadable(f"line:{number}", too_long(number), None)
                    elif line.strip():
                        yield self._parse(line, number)
            except UnicodeDecodeError as error:
                raise undecodable(path, self.settings.encoding, error) from None

    def key(self, record: Mapping[str, Any]) -> str:
        return record_key(record, self.settings.key)

    def _parse(self, line: str, number: int) -> Record | Unreadable:
        try:
            value = parse_bounded_json(line)
            flaw = _flaw(value, line)
        except json.JSONDecodeError as error:
            return Unreadable(f"line:{number}", f"line {number} is not valid JSON: {error}", line)
        except ValueError as error:  # a number over the limit
            return Unreadable(f"line:{number}", f"line {number} cannot be read: {error}", line)
        except RecursionError:
            flaw = _too_deep()
        if flaw is not None:
            return Unreadable(f"line:{number}", f"line {number} {flaw}", line)
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
    undoes_uncommitted_writes: ClassVar[bool] = True  # the file is cut to its committed size
    description: ClassVar[str] = "objects appended to a JSON Lines file"
    settings: FileSinkSettings

    def minimum_requests(self, records: int) -> int:
        return 0  # a local file spends no service's budget

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        self.log = AppendLog(
            self.context.path(self.settings.path), self.settings.encoding, self.settings.if_exists
        )
        self.log.open(checkpoint)

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        assert self.log.handle is not None
        results = []
        for item in batch:
            try:
                self.log.handle.write(_line(item.payload) + "\n")
            except UnicodeEncodeError as error:  # nothing of the line was written
                results.append(unwritable(item.key, error, self.settings.encoding))
                continue
            outcome = Outcome.UPDATED if item.is_update else Outcome.WRITTEN
            results.append(WriteResult(item.key, outcome))
        self.log.sync()
        return results

    def checkpoint(self) -> dict[str, Any] | None:
        return {"size": self.log.size()}

    def close(self) -> None:
        if hasattr(self, "log"):
            self.log.close()


#: ``to_json`` of a payload, with one encoder for every line instead of one per line.
_line = exact_json_encoder()


def _flaw(value: Any, line: str) -> str | None:
    """What makes a parsed line unfit to be a record, or None.

    Nesting past the depth limit would overflow the stack of whatever walks the record next;
    a lone surrogate (``"\\udc80"``, valid JSON) is not text, and no file or database takes it.
    Both are looked for only when the line's text allows them, so a plain line costs nothing.
    """
    depth = limits.current().depth
    deep = line.count("[") + line.count("{") > depth
    escaped = "\\u" in line
    if not (deep or escaped):
        return None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            if deep and level > depth:
                return _too_deep()
            if escaped and any(not _is_text(key) for key in item):
                return _NOT_TEXT
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            if deep and level > depth:
                return _too_deep()
            stack.extend((child, level + 1) for child in item)
        elif escaped and isinstance(item, str) and not _is_text(item):
            return _NOT_TEXT
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep() -> str:
    depth = limits.current()
    return f"is nested more than {depth.depth} deep ({depth.variable('depth')})"


_NOT_TEXT = (
    "holds text that is not valid Unicode (half of a surrogate pair, such as \\udc80,"
    " escaped in the JSON); no file or database can store it"
)
