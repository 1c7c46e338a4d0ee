"""``file.csv``: read rows as records; write payloads as rows."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, model_validator

from connectors.files.common import (
    AppendLog,
    FileSinkSettings,
    FileSource,
    FileSourceSettings,
    input_path,
    missing_key,
    open_input,
    record_key,
    undecodable,
    unwritable,
)
from connectors.files.csv_rows import Row, read_rows
from core.errors import InputError
from core.json_numbers import plain_text, to_json
from core.outcomes import Outcome, WriteItem, WriteResult
from core.sink import Sink
from core.source import Record, Unreadable


class CsvSourceSettings(FileSourceSettings):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = Field(default=True, description="the first row names the columns")
    columns: list[str] | None = Field(default=None, description="column names when header: false")
    empty_as_null: bool = Field(default=True, description="read empty cells as null")

    @model_validator(mode="after")
    def _named_columns(self) -> Self:
        if not self.header and not self.columns:
            msg = "with header: false, set columns: to the column names, in the file's order"
            raise ValueError(msg)
        if self.header and self.columns:
            msg = "columns: is for header: false; with a header row the file names its columns"
            raise ValueError(msg)
        if self.columns and self.key is not None and self.key not in self.columns:
            msg = f"key {self.key!r} is not one of the columns: {', '.join(self.columns)}"
            raise ValueError(msg)
        return self


class CsvSource(FileSource):
    """Rows of a CSV file; every run reads the whole file and the ledger skips unchanged rows."""

    name: ClassVar[str] = "file.csv"
    Settings: ClassVar[type[BaseModel]] = CsvSourceSettings
    description: ClassVar[str] = "rows of a CSV file"
    settings: CsvSourceSettings

    @classmethod
    def record_fields(cls, settings: BaseModel, base_dir: Path) -> list[str] | None:
        assert isinstance(settings, CsvSourceSettings)
        if not settings.header:
            return settings.columns
        try:
            with open_input(input_path(settings, base_dir), settings.encoding, newline="") as file:
                first = next(read_rows(file, settings.delimiter), None)
        except (InputError, UnicodeDecodeError):
            return None  # preflight, or the run, says what is wrong with the file
        return first.cells if first is not None and first.cells else None

    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        path = self.context.path(self.settings.path)
        with open_input(path, self.settings.encoding, newline="") as handle:
            rows = read_rows(handle, self.settings.delimiter)
            try:
                columns = self._columns(rows) if self.settings.header else self.settings.columns
                if not columns:
                    return
                width = len(columns)
                for line, cells, problem in rows:
                    if cells is None:
                        yield Unreadable(f"line:{line}", problem or "unreadable")
                    elif len(cells) == width and "" not in cells and any(map(str.strip, cells)):
                        # The usual row: every cell filled (so its key too), no null to make.
                        yield dict(zip(columns, cells, strict=True))
                    elif any(map(str.strip, cells)):  # a row of blanks is no record
                        yield self._record(columns, cells, line)
            except UnicodeDecodeError as error:
                raise undecodable(path, self.settings.encoding, error) from None

    def _columns(self, rows: Iterator[Row]) -> list[str] | None:
        """The header row; the key column must be in it, or no row could be told apart."""
        path = self.context.path(self.settings.path)
        first = next(rows, None)
        if first is None:
            return None
        if first.cells is None:
            msg = f"cannot read the header of {path}: {first.problem}"
            raise InputError(msg)
        header = first.cells
        key = self.settings.key
        if header and key is not None and key not in header:
            msg = (
                f"{path} has no column {key!r}, the source's key; its columns: {', '.join(header)}"
            )
            raise InputError(msg)
        return header

    def _record(self, columns: Sequence[str], row: list[str], line: int) -> Record | Unreadable:
        if len(row) != len(columns):
            reason = f"line {line} has {len(row)} cells; the header has {len(columns)}"
            return Unreadable(f"line:{line}", reason, raw=row)
        record: Record = dict(zip(columns, row, strict=True))
        if self.settings.empty_as_null and "" in row:
            record = {c: (None if v == "" else v) for c, v in record.items()}
        if missing_key(record, self.settings.key):
            reason = f"line {line} has no value in the key column {self.settings.key!r}"
            return Unreadable(f"line:{line}", reason, raw=row)
        return record

    def key(self, record: Mapping[str, Any]) -> str:
        return record_key(record, self.settings.key)


class CsvSinkSettings(FileSinkSettings):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    columns: list[str] | None = Field(
        default=None, description="column order; default: the first payload's keys"
    )


class CsvSink(Sink):
    """Appends one row per payload. A changed record is appended again: the last row wins."""

    name: ClassVar[str] = "file.csv"
    Settings: ClassVar[type[BaseModel]] = CsvSinkSettings
    supports_update: ClassVar[bool] = True
    undoes_uncommitted_writes: ClassVar[bool] = True  # the file is cut to its committed size
    description: ClassVar[str] = "rows appended to a CSV file"
    settings: CsvSinkSettings

    def minimum_requests(self, records: int) -> int:
        return 0  # a local file spends no service's budget

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        self.log = AppendLog(
            self.context.path(self.settings.path), self.settings.encoding, self.settings.if_exists
        )
        self.log.open(checkpoint)
        self.columns = self.settings.columns or (checkpoint or {}).get("columns")

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        assert self.log.handle is not None
        writer = csv.writer(self.log.handle, delimiter=self.settings.delimiter)
        results = []
        for item in batch:
            if self.columns is None:
                self.columns = list(item.payload)
            unknown = [k for k in item.payload if k not in self.columns]
            if unknown:
                reason = f"not a column of the file; columns: {', '.join(self.columns)}"
                results.append(
                    WriteResult(item.key, Outcome.INVALID, reason=reason, field=unknown[0])
                )
                continue
            try:
                if self.log.fresh:
                    writer.writerow(self.columns)
                    self.log.fresh = False
                writer.writerow([_cell(item.payload.get(c)) for c in self.columns])
            except UnicodeEncodeError as error:  # nothing of the row was written
                results.append(unwritable(item.key, error, self.settings.encoding))
                continue
            outcome = Outcome.UPDATED if item.is_update else Outcome.WRITTEN
            results.append(WriteResult(item.key, outcome))
        self.log.sync()
        return results

    def checkpoint(self) -> dict[str, Any] | None:
        return {"size": self.log.size(), "columns": self.columns}

    def close(self) -> None:
        if hasattr(self, "log"):
            self.log.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return to_json(value, sort_keys=True, ensure_ascii=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return plain_text(value)
