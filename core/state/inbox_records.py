"""How an inbox keeps an event's record: as the source made it, number types included.

A float and the decimal it prints as give different payload digests, and the ledger must find
the same digest when a polling source reads the same object later (a Virtuous gift's ``40.0``
read by ``json.loads`` on both paths). Plain JSON would turn decimals into floats, exact JSON
every fraction into a decimal; so decimals are kept as tagged objects. Text is escaped to ASCII,
so a lone surrogate survives. Every inbox backend writes its rows with :func:`new_event_row`
and reads them back as events with :func:`event_from_row`, which keep records this way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from core.json_numbers import JsonNumber
from core.state.base import InboxEvent, NewEvent

_TAGS: dict[type[Decimal], str] = {JsonNumber: "\u0000json-number", Decimal: "\u0000decimal"}
_TYPES = {tag: kind for kind, tag in _TAGS.items()}

#: The ``inbox`` columns :func:`event_from_row` reads, in its order (the same in every backend);
#: each backend's query follows them with when the claim holding the event ends, by its clock
#: (NULL when none holds it), which only the backend can tell.
EVENT_COLUMNS = (
    "seq, recipe, type, source_key, record, event_id, occurred_at, received_at, status,"
    " attempts, available_at, last_error"
)


def dump_record(record: dict[str, Any]) -> str:
    """``record`` as JSON text that :func:`load_record` reads back as it was."""
    return json.dumps(record, default=_tagged, ensure_ascii=True, sort_keys=True)


def load_record(text: str) -> Any:
    return json.loads(text, object_hook=_untagged)


def _tagged(value: Any) -> dict[str, str]:
    if isinstance(value, Decimal):
        return {_TAGS[JsonNumber if isinstance(value, JsonNumber) else Decimal]: str(value)}
    msg = f"a webhook event's record holds a {type(value).__name__}, which JSON cannot keep"
    raise TypeError(msg)


def _untagged(found: dict[str, Any]) -> Any:
    if len(found) == 1:
        [(key, value)] = found.items()
        if key in _TYPES:
            return _TYPES[key](value)
    return found


#: The ``inbox`` columns :func:`new_event_row` gives; the backend adds the times, by its clock.
NEW_EVENT_COLUMNS = "recipe, event_id, type, source_key, record, occurred_at"


def new_event_row(event: NewEvent) -> tuple[Any, ...]:
    """The values of an ``inbox`` row of ``event`` in :data:`NEW_EVENT_COLUMNS`."""
    e = event
    return (e.recipe, e.event_id, e.type, e.key, dump_record(e.record), e.occurred_at)


def event_from_row(row: tuple[Any, ...]) -> InboxEvent:
    """An ``inbox`` row of the :data:`EVENT_COLUMNS` and its lease's end as the event."""
    return InboxEvent(
        seq=row[0],
        recipe=row[1],
        type=row[2],
        key=row[3],
        record=load_record(row[4]),
        event_id=row[5],
        occurred_at=row[6],
        received_at=row[7],
        status=row[8],
        attempts=row[9],
        available_at=row[10],
        last_error=row[11],
        leased_until=row[12],
    )


def after_failure(
    attempts: int, backoff: Callable[[int], float], max_attempts: int
) -> tuple[int, str, float]:
    """An event's attempts, status and how many seconds from now it is due once one more
    attempt of it failed: ``backoff(attempts)``, and ``failed`` for good at ``max_attempts``."""
    attempts += 1
    status = "failed" if attempts >= max_attempts else "pending"
    return attempts, status, backoff(attempts)
