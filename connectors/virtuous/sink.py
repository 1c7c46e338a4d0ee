"""What the Virtuous sinks share: the central client, opened once per run, and record-at-a-time
writing for the endpoints that take one record per request."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from connectors.virtuous.service import VirtuousSettings, virtuous_client
from core.errors import RetriableError, SkippableError
from core.outcomes import Outcome, WriteItem, WriteResult
from core.sink import Sink

if TYPE_CHECKING:  # httpx comes with the client, when a run opens the sink: `validate` needs none
    import httpx

    from core.http import Service


class VirtuousSink(Sink):
    """A sink that writes through the central client for Virtuous."""

    settings: VirtuousSettings
    client: httpx.Client
    service: Service  # for Virtuous's error messages

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        self.client, self.service = virtuous_client(self.settings, self.context)

    def reader(self) -> httpx.Client:
        """The client, for look-ups made without :meth:`open` (a dry run opens nothing)."""
        if not hasattr(self, "client"):
            self.open(None)
        return self.client


class OneByOne(VirtuousSink):
    """Writes each record with its own requests (:meth:`write_one`); what goes wrong with one
    record is that record's outcome, and the rest of the batch carries on."""

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        return [_each(self.write_one, item) for item in batch]

    def preview(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        self.reader()
        return [_each(self.preview_one, item) for item in batch]

    def preview_one(self, item: WriteItem) -> WriteResult:
        """What :meth:`write_one` would answer, found by look-ups alone (see
        :meth:`core.sink.Sink.preview`); by default written, or updated."""
        return super().preview([item])[0]

    def minimum_requests(self, records: int) -> int:
        return records  # at least one request each

    @abstractmethod
    def write_one(self, item: WriteItem) -> WriteResult:
        """Write one record; raise :class:`~core.errors.SkippableError` to give up on it alone."""


def _each(do: Callable[[WriteItem], WriteResult], item: WriteItem) -> WriteResult:
    """``do(item)``; what goes wrong with this record alone is its outcome."""
    try:
        return do(item)
    except SkippableError as error:
        return WriteResult(
            item.key, Outcome(error.outcome), reason=error.message, field=error.field
        )
    except RetriableError as error:
        return WriteResult(item.key, Outcome.FAILED, reason=str(error))
