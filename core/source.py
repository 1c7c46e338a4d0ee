"""The contract every source implements: read records, say each one's key and cursor value."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from core.context import Context

Record = dict[str, Any]


@dataclass(frozen=True)
class Unreadable:
    """Yielded by a source for an input it cannot parse (a broken line of a file).

    The runner dead-letters it with ``reason`` and carries on; ``raw`` is kept for the replay.
    """

    key: str
    reason: str
    raw: Any = None


@dataclass(frozen=True)
class Seen:
    """A record as a two-way pair compares it (see :mod:`core.two_way`).

    ``fields`` are named as a sink that writes to this service names its payload's fields
    (dotted for nested ones: ``merge_fields.FNAME``), with values as that sink would write them;
    ``modified`` is when the record last changed (ISO 8601, UTC), when the service says.
    """

    fields: dict[str, Any]
    modified: str | None = None


def utc_moment(value: Any) -> str | None:
    """A moment as a service reports it (ISO 8601, UTC when it has no offset) as ISO 8601 with
    the offset, in UTC: what :attr:`Seen.modified` holds. None when it is no such moment."""
    try:
        moment = datetime.fromisoformat(str(value or ""))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()


class NoSettings(BaseModel):
    """For components that take no ``with:`` settings."""

    model_config = ConfigDict(extra="forbid")


class Source(ABC):
    """Reads records from one endpoint of one service.

    Subclasses set ``name`` (``"service.stream"``) and ``Settings`` (a pydantic model with
    ``extra="forbid"``) and implement :meth:`read`. The runner calls :meth:`key` and
    :meth:`cursor_value` on every record, commits the highest cursor value with each batch, and
    passes it back to :meth:`read` on the next run.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = NoSettings
    description: ClassVar[str] = ""
    #: The fields of the records it yields, for ``connector describe``; None: sampled instead.
    RecordModel: ClassVar[type[BaseModel] | None] = None
    #: How many records :meth:`read` will yield, once it knows (an API's count of what
    #: matched); the progress line then shows a percentage and the time left.
    total: int | None = None

    def __init__(self, settings: BaseModel, context: Context) -> None:
        self.settings = settings
        self.context = context

    @classmethod
    def preflight(cls, settings: BaseModel, base_dir: Path) -> dict[str, str]:
        """What is wrong with ``settings`` that shows without reaching the service, as
        ``{setting: problem}`` (a file source's input that is not there). ``connector validate``
        reports it; ``base_dir`` is the recipe's directory, which relative paths start from."""
        return {}

    @classmethod
    def record_fields(cls, settings: BaseModel, base_dir: Path) -> list[str] | None:
        """The fields every record has, when the source can tell without reading one (a CSV
        file's header), else None. ``connector validate`` refuses a ``record.`` path outside
        them: every record would lack it."""
        return None

    @abstractmethod
    def read(self, cursor: Any | None) -> Iterator[Record | Unreadable]:
        """Yield records, oldest first where the service allows, starting after ``cursor``.

        Sources that re-read an overlap window may yield records already seen: the ledger
        recognises them as unchanged.
        """

    def key(self, record: Mapping[str, Any]) -> str:
        """The record's stable identity in this source; by default its ``id``."""
        return str(record["id"])

    def cursor_value(self, record: Mapping[str, Any]) -> Any | None:
        """The value to resume after; None for sources that always read everything."""
        return None

    def pair_seen(self, record: Mapping[str, Any]) -> Seen | None:
        """The record as a two-way pair compares it; None (the default): this source cannot
        take part in a pair (a recipe that pairs it is refused)."""
        return None

    def end_cursor(self) -> Any | None:
        """The cursor to commit once :meth:`read` has yielded everything, or None.

        For sources whose records arrive out of cursor order (keyset paging by id over a
        modified-since window): they commit the time the read started, and only when it finished.
        """
        return None

    def close(self) -> None:
        """Release what :meth:`read` opened."""
