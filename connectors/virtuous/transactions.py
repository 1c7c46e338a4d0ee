"""Posting transactions to Virtuous's import holding area, in batches that bad records can't sink.

A rejected batch is narrowed down: the records ``modelState`` names (``transactions[3].amount``)
are dead-lettered and the rest are sent again; when the server names none, the batch is halved.
A record the server refuses as already submitted (its transactionSource + transactionId) is
already in Virtuous: it counts as written, never as a second gift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import httpx

from core.errors import InvalidRecord
from core.http import Service, error_message, raise_for_status
from core.outcomes import Outcome, WriteItem, WriteResult

_INDEX = re.compile(r"^[^\[]*\[(\d+)\]\.?(.*)$")
_DUPLICATE = re.compile(r"already|duplicate", re.IGNORECASE)

IDEMPOTENT = {"connector_idempotent": True}

Send = Callable[[Sequence[WriteItem]], httpx.Response]


def write_batch(
    items: Sequence[WriteItem], send: Send, service: Service, sink_key: Callable[[WriteItem], str]
) -> list[WriteResult]:
    """Send ``items``; on a 400, pin down the bad records and send the others again."""
    if not items:
        return []
    response = send(items)
    if response.status_code < 400:
        return [WriteResult(i.key, Outcome.WRITTEN, sink_key=sink_key(i)) for i in items]
    if response.status_code != 400:
        raise_for_status(response, service)  # 401/403 stop the run; 5xx after retries: failed
    if len(items) == 1:
        return [_refused(items[0], response, service, sink_key)]
    named = _named_indexes(response, len(items))
    if named:
        results = [
            _refused(items[i], response, service, sink_key, field=named[i]) for i in sorted(named)
        ]
        rest = [item for i, item in enumerate(items) if i not in named]
        return results + write_batch(rest, send, service, sink_key)
    middle = len(items) // 2
    return write_batch(items[:middle], send, service, sink_key) + write_batch(
        items[middle:], send, service, sink_key
    )


def _refused(
    item: WriteItem,
    response: httpx.Response,
    service: Service,
    sink_key: Callable[[WriteItem], str],
    field: str | None = None,
) -> WriteResult:
    message = error_message(response, service)
    if _DUPLICATE.search(message):
        return WriteResult(
            item.key,
            Outcome.UNCHANGED,
            sink_key=sink_key(item),
            reason="already submitted to Virtuous",
        )
    return WriteResult(
        item.key,
        Outcome.INVALID,
        reason=f"Virtuous refused it: {message}",
        field=field or _first_field(response),
    )


def _named_indexes(response: httpx.Response, size: int) -> dict[int, str]:
    """Indexes of the batch that ``modelState`` blames, with the field it names for each."""
    try:
        problems = response.json().get("modelState") or {}
    except (ValueError, AttributeError):
        return {}
    named: dict[int, str] = {}
    for key in problems if isinstance(problems, dict) else ():
        match = _INDEX.match(str(key))
        if match and int(match.group(1)) < size:
            named.setdefault(int(match.group(1)), match.group(2) or "")
    return named


def _first_field(response: httpx.Response) -> str | None:
    try:
        problems = response.json().get("modelState") or {}
    except (ValueError, AttributeError):
        return None
    for key in problems if isinstance(problems, dict) else ():
        match = _INDEX.match(str(key))
        return match.group(2) if match else str(key).split(".", 1)[-1]
    return None


def check_single(response: httpx.Response, service: Service) -> None:
    """For single-record endpoints: raise InvalidRecord with Virtuous's message on a 400."""
    if response.status_code == 400:
        msg = f"Virtuous refused it: {error_message(response, service)}"
        raise InvalidRecord(msg)
    raise_for_status(response, service)
