"""The outcome every record ends with, and what the runner reports about a batch write."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Outcome(enum.StrEnum):
    """How one record ended. The first five are successes; the rest reach the dead-letter queue."""

    #: created in the sink for the first time
    WRITTEN = "written"
    #: the source record changed since it was written, and the sink updated it
    UPDATED = "updated"
    #: already written with the same payload; nothing was sent
    UNCHANGED = "unchanged"
    #: the recipe's ``filter:`` left it out
    FILTERED = "filtered"
    #: two-way sync: the other system already holds what this record would write (the echo of
    #: the paired recipe's write), or the pair's conflict policy keeps the other side's value;
    #: nothing was sent
    ECHO = "echo"
    #: it could not be mapped or validated, or the service rejected it (4xx)
    INVALID = "invalid"
    #: the service kept failing (5xx, timeouts) after every retry
    FAILED = "failed"
    #: a person must look: it changed after it was written and the sink cannot update, or it
    #: refers to something (a gift to refund) that does not exist yet
    NEEDS_REVIEW = "needs_review"

    @property
    def succeeded(self) -> bool:
        return self in _SUCCESSES


_SUCCESSES = frozenset(
    {Outcome.WRITTEN, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.FILTERED, Outcome.ECHO}
)


@dataclass(frozen=True)
class LedgerEntry:
    """What the state store remembers about one source record that reached the sink."""

    key: str
    payload_hash: str
    sink_key: str | None
    outcome: Outcome
    updated_at: str


@dataclass
class WriteItem:
    """One validated payload handed to a sink.

    ``previous`` is the ledger entry when the record was written before (so this is an update).
    ``resent`` says the record was sent before by a run that stopped before it recorded the
    answer, and the sink could not find out what became of it: the service may hold it already,
    so a refusal of it as a duplicate means this recipe wrote it.
    """

    key: str
    payload: dict[str, Any]
    previous: LedgerEntry | None = None
    resent: bool = False

    @property
    def is_update(self) -> bool:
        return self.previous is not None


@dataclass(frozen=True)
class WriteResult:
    """What a sink reports for one item of a batch."""

    key: str
    outcome: Outcome
    sink_key: str | None = None
    reason: str | None = None
    field: str | None = None
    #: False when the sink knows nothing reached the service (a failed look-up before the
    #: write): the record is then no longer in flight, though it failed.
    maybe_sent: bool = True
