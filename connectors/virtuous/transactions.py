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
from core.http import Service, error_message, raise_for_status, redact_text
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
        problems = _problems(response)
        field = _field(problems[0][0]) if problems else None
        return [_refused(items[0], error_message(response, service), field, sink_key)]
    blamed = _blamed(response, len(items))
    if blamed:
        results = [
            _refused(items[i], message, field, sink_key)
            for i, (field, message) in sorted(blamed.items())
        ]
        rest = [item for i, item in enumerate(items) if i not in blamed]
        return results + write_batch(rest, send, service, sink_key)
    middle = len(items) // 2
    return write_batch(items[:middle], send, service, sink_key) + write_batch(
        items[middle:], send, service, sink_key
    )


def _refused(
    item: WriteItem, message: str, field: str | None, sink_key: Callable[[WriteItem], str]
) -> WriteResult:
    """The outcome of one record Virtuous refused, judged by what it said about that record."""
    if _DUPLICATE.search(message):
        return WriteResult(
            item.key,
            Outcome.UNCHANGED,
            sink_key=sink_key(item),
            reason="already submitted to Virtuous",
        )
    return WriteResult(
        item.key, Outcome.INVALID, reason=f"Virtuous refused it: {message}", field=field or None
    )


def _problems(response: httpx.Response) -> list[tuple[str, str]]:
    """(field key, message) pairs from ``modelState``, or from the 2026 envelope's details."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    found: list[tuple[str, str]] = []
    model_state = body.get("modelState")
    if isinstance(model_state, dict):
        for key, errors in model_state.items():
            texts = errors if isinstance(errors, list) else [errors]
            found.extend((str(key), str(text)) for text in texts)
    envelope = body.get("error")
    details = envelope.get("details") if isinstance(envelope, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("field"):
            found.append((str(detail["field"]), str(detail.get("message") or "")))
    return found


def _blamed(response: httpx.Response, size: int) -> dict[int, tuple[str, str]]:
    """The batch indexes the server blames, each with its first field and all its messages."""
    blamed: dict[int, tuple[str, str]] = {}
    for key, text in _problems(response):
        match = _INDEX.match(key)
        if not match or int(match.group(1)) >= size:
            continue
        index = int(match.group(1))
        field, said = blamed.get(index, (match.group(2) or "", ""))
        blamed[index] = (field, f"{said}; {text}" if said else text)
    return {i: (field, redact_text(message)) for i, (field, message) in blamed.items()}


def _field(key: str) -> str:
    """``transaction.giftDate`` or ``transactions[3].giftDate`` -> ``giftDate``."""
    match = _INDEX.match(key)
    return match.group(2) if match else key.split(".", 1)[-1]


def check_single(response: httpx.Response, service: Service) -> None:
    """For single-record endpoints: raise InvalidRecord with Virtuous's message on a 400."""
    if response.status_code == 400:
        msg = f"Virtuous refused it: {error_message(response, service)}"
        raise InvalidRecord(msg)
    raise_for_status(response, service)
