"""What the Virtuous sinks share: the central client, opened once per run, and record-at-a-time
writing for the endpoints that take one record per request."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx

from connectors.virtuous.service import VirtuousSettings, virtuous_client
from core.errors import RetriableError, SkippableError
from core.http import Service
from core.outcomes import Outcome, WriteItem, WriteResult
from core.sink import Sink


class VirtuousSink(Sink):
    """A sink that writes through the central client for Virtuous."""

    settings: VirtuousSettings
    client: httpx.Client
    service: Service  # for Virtuous's error messages

    def open(self, checkpoint: dict[str, Any] | None) -> None:
        self.client, self.service = virtuous_client(self.settings, self.context)


class OneByOne(VirtuousSink):
    """Writes each record with its own requests (:meth:`write_one`); what goes wrong with one
    record is that record's outcome, and the rest of the batch carries on."""

    def write(self, batch: Sequence[WriteItem]) -> list[WriteResult]:
        results = []
        for item in batch:
            try:
                results.append(self.write_one(item))
            except SkippableError as error:
                results.append(
                    WriteResult(
                        item.key, Outcome(error.outcome), reason=error.message, field=error.field
                    )
                )
            except RetriableError as error:
                results.append(WriteResult(item.key, Outcome.FAILED, reason=str(error)))
        return results

    def minimum_requests(self, records: int) -> int:
        return records  # at least one request each

    @abstractmethod
    def write_one(self, item: WriteItem) -> WriteResult:
        """Write one record; raise :class:`~core.errors.SkippableError` to give up on it alone."""
