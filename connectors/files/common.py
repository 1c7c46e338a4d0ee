"""What the CSV and JSON Lines connectors share: settings, keys, bounded lines, safe appending."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core import limits
from core.errors import InputError
from core.outcomes import Outcome, WriteResult
from core.source import Source


def _known_encoding(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        msg = f"unknown encoding {name!r}; for example utf-8, utf-8-sig, cp1252, latin-1"
        raise ValueError(msg) from None
    return name


class FileSourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the file to read, relative to the recipe")
    encoding: str = "utf-8-sig"
    key: str | None = Field(
        default=None,
        description="the field that identifies a record; every record must have it."
        " Default: a hash of the record",
    )

    _encoding = field_validator("encoding")(_known_encoding)


class FileSinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the file to write, relative to the recipe")
    encoding: str = "utf-8"
    batch_size: int = Field(default=500, ge=1, le=100_000)
    if_exists: Literal["error", "overwrite", "append"] = Field(
        default="error",
        description="what to do when the file exists but this recipe's state never wrote it",
    )

    _encoding = field_validator("encoding")(_known_encoding)


class FileSource(Source):
    """A source that reads one file, named by its ``path`` setting."""

    @classmethod
    def preflight(cls, settings: BaseModel, base_dir: Path) -> dict[str, str]:
        assert isinstance(settings, FileSourceSettings)
        path = input_path(settings, base_dir)
        if path.is_file():
            return {}
        problem = "is a directory, not a file" if path.is_dir() else "does not exist"
        return {"path": f"input file {path} {problem}{_files_beside(path)}"}


def input_path(settings: FileSourceSettings, base_dir: Path) -> Path:
    """The file ``settings`` name, relative paths from the recipe's folder (as a run reads it)."""
    path = Path(settings.path).expanduser()
    return path if path.is_absolute() else base_dir / path


def _files_beside(path: Path) -> str:
    """The files of ``path``'s kind in its folder: the one meant is often among them."""
    folder = path.parent
    if not folder.is_dir():
        return f" (nor does the folder {folder})"
    found = sorted(p.name for p in folder.glob(f"*{path.suffix}") if p.is_file())
    if not found:
        return f"; {folder} holds no {path.suffix or 'such'} file"
    shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
    return f"; {folder} holds {shown}"


def record_key(record: Mapping[str, Any], field: str | None) -> str:
    """``record[field]`` as text; with no key field, a hash of the whole record.

    The sources dead-letter a record that lacks its key field (see :func:`missing_key`) before
    this is asked: hashing it would make a changed record look like a new one.
    """
    if field is not None:
        return str(record[field])
    text = json.dumps(record, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def missing_key(record: Mapping[str, Any], field: str | None) -> bool:
    """True when the source's key ``field`` is configured but the record has no value for it."""
    return field is not None and record.get(field) in (None, "")


def open_input(path: Path, encoding: str, newline: str | None = None) -> IO[str]:
    try:
        return path.open(encoding=encoding, newline=newline)
    except FileNotFoundError:
        msg = f"input file not found: {path}"
        raise InputError(msg) from None
    except (OSError, LookupError) as error:
        msg = f"cannot read input file {path}: {error}"
        raise InputError(msg) from None


def undecodable(path: Path, encoding: str, error: UnicodeDecodeError) -> InputError:
    """The error for an input that is not text in ``encoding``, naming the line at fault.

    The decoder reads ahead in blocks, so neither it nor the reader knows the line; the file is
    read again, marking what cannot be decoded, to find the first line holding such a mark.
    """
    line = "?"
    with path.open(encoding=encoding, errors=_MARK, newline="") as handle:
        for number, text in enumerate(handle, start=1):
            if _MARKER in text:
                line = str(number)
                break
    msg = (
        f"cannot read {path}: line {line} is not {encoding} text ({error.reason});"
        " set the source's encoding to the file's (cp1252 and latin-1 are common)"
    )
    return InputError(msg)


_ENDINGS = ("\n", "\r")


def bounded_lines(handle: IO[str]) -> Iterator[tuple[int, str | None]]:
    """``(number, text)`` for each line of ``handle``; ``text`` is None for a line over the length
    limit (:mod:`core.limits`), which is skipped unread, so one 2 GB line costs no memory."""
    longest = limits.current().length
    number = 0
    while line := handle.readline(longest + 1):
        number += 1
        if len(line) <= longest or line.endswith(_ENDINGS):
            yield number, line
            continue
        while (rest := handle.readline(65536)) and not rest.endswith(_ENDINGS):
            pass
        yield number, None


def too_long(number: int) -> str:
    """The reason a record of ``number`` lines' length was refused."""
    longest = limits.current()
    return (
        f"line {number} is longer than {longest.length:,} characters, the most one record may"
        f" have ({longest.variable('length')})"
    )


def unwritable(key: str, error: UnicodeEncodeError, encoding: str) -> WriteResult:
    """The outcome of a payload that holds text the output's ``encoding`` cannot write."""
    bad = error.object[error.start : error.end]
    if any("\ud800" <= char <= "\udfff" for char in bad):
        reason = f"holds {ascii(bad)}, half of a surrogate pair, which is not text"
    else:
        reason = f"holds {ascii(bad)}, which {encoding} cannot write; set the sink's encoding"
    return WriteResult(key, Outcome.INVALID, reason=reason)


# A lone surrogate: no codec decoding valid input gives one, so it marks the bytes that failed.
_MARKER = "\udcff"
_MARK = "connector.files.mark"


def _mark(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return _MARKER, error.end


codecs.register_error(_MARK, _mark)


class AppendLog:
    """An output file appended batch by batch, whose committed length is the sink checkpoint.

    A crashed run may have appended rows after its last commit; :meth:`open` cuts them off, so
    the re-run writes them once.
    """

    def __init__(self, path: Path, encoding: str, if_exists: str) -> None:
        self.path = path
        self.encoding = encoding
        self.if_exists = if_exists
        self.handle: IO[str] | None = None
        self.fresh = True

    def open(self, checkpoint: Mapping[str, Any] | None) -> None:
        committed = int(checkpoint["size"]) if checkpoint and "size" in checkpoint else None
        exists = self.path.exists() and self.path.stat().st_size > 0
        if committed is None and exists and self.if_exists == "error":
            msg = (
                f"output file {self.path} exists but this recipe's state has no record of"
                " writing it; move it away, or set if_exists: overwrite or append"
            )
            raise InputError(msg)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("a+", encoding=self.encoding, newline="")
            if committed is not None:
                self.handle.truncate(min(committed, self.path.stat().st_size))
            elif self.if_exists == "overwrite":
                self.handle.truncate(0)
        except OSError as error:
            msg = f"cannot write output file {self.path}: {error}"
            raise InputError(msg) from None
        self.handle.seek(0, os.SEEK_END)
        self.fresh = self.handle.tell() == 0

    def sync(self) -> None:
        assert self.handle is not None
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def size(self) -> int:
        assert self.handle is not None
        return self.handle.tell()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
