"""What the CSV and JSON Lines connectors share: settings, keys, crash-safe appending."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InputError


class FileSourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the file to read, relative to the recipe")
    encoding: str = "utf-8-sig"
    key: str | None = Field(
        default=None, description="the field that identifies a record; default: a hash of it"
    )


class FileSinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the file to write, relative to the recipe")
    encoding: str = "utf-8"
    batch_size: int = Field(default=500, ge=1, le=100_000)
    if_exists: Literal["error", "overwrite", "append"] = Field(
        default="error",
        description="what to do when the file exists but this recipe's state never wrote it",
    )


def record_key(record: Mapping[str, Any], field: str | None) -> str:
    if field is not None and record.get(field) not in (None, ""):
        return str(record[field])
    text = json.dumps(record, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def open_input(path: Path, encoding: str, newline: str | None = None) -> IO[str]:
    try:
        return path.open(encoding=encoding, newline=newline)
    except FileNotFoundError:
        msg = f"input file not found: {path}"
        raise InputError(msg) from None
    except (OSError, LookupError) as error:
        msg = f"cannot read input file {path}: {error}"
        raise InputError(msg) from None


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
