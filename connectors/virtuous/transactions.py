"""Posting transactions to Virtuous's import holding area, in batches that bad records can't sink.

A rejected batch is narrowed down: the records ``modelState`` names (``transactions[3].amount``)
are dead-lettered and the rest are sent again; when the server names none, the batch is halved.

A repeated transactionId is "the only validation error you will encounter" (Virtuous's HMAC
sample), but its wording is nowhere documented. So a refusal counts as "already submitted" only
when it names that record's own transactionId (as a whole word, about the id field or about no
field at all), never because of words such as "already" in data it quotes back. Every record
handed to a sink is in flight (the runner marked it before the request): one Virtuous holds
because an earlier attempt of ours arrived (its answer lost, or a run stopped) counts as
written, with its money; one somebody else submitted counts as unchanged.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core.errors import InvalidRecord, RetriableError
from core.http import RetryPolicy, Service, redact_text
from core.outcomes import Outcome, WriteItem, WriteResult

if TYPE_CHECKING:  # answers come from the client, built when a run opens the sink
    import httpx

logger = logging.getLogger(__name__)

_INDEX = re.compile(r"^[^\[]*\[(\d+)\]\.?(.*)$")
# The fields a duplicate refusal may be about: the dedup pair, or the transaction as a whole.
_ID_FIELDS = {"", "transactionid", "transactionsource", "transaction"}

IDEMPOTENT = {"connector_idempotent": True}

Send = Callable[[Sequence[WriteItem]], "httpx.Response"]
Sleep = Callable[[float], None]


def transaction_id(item: WriteItem) -> str | None:
    """The id a duplicate refusal of ``item`` must name: its transactionId."""
    value = item.payload.get("transactionId")
    return str(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Delivery:
    """How a batch is sent: ``attempts`` tries (1: the central client's retries alone)."""

    attempts: int = 1
    policy: RetryPolicy | None = None
    sleep: Sleep = time.sleep


def write_batch(
    items: Sequence[WriteItem],
    send: Send,
    service: Service,
    sink_key: Callable[[WriteItem], str],
    named_by: Callable[[WriteItem], str | None] = transaction_id,
    delivery: Delivery | None = None,
) -> list[WriteResult]:
    """Send ``items``; on a 400, pin down the bad records and send the others again."""
    from core.http import error_message, raise_for_status

    if not items:
        return []
    how = delivery or Delivery()
    response, repeated = _deliver(items, send, how)
    if repeated:  # an attempt whose answer we never had may have reached Virtuous
        items = [replace(item, resent=True) for item in items]
    if response.status_code < 400:
        return [WriteResult(i.key, Outcome.WRITTEN, sink_key=sink_key(i)) for i in items]
    if response.status_code != 400:
        raise_for_status(response, service)  # 401/403 stop the run; 5xx after retries: failed
    if len(items) == 1:
        problems = _problems(response)
        field = _field(problems[0][0]) if problems else None
        message = error_message(response, service)
        return [_refused(items[0], message, field, sink_key, named_by)]
    blamed = _blamed(response, len(items))
    if blamed:
        results = [
            _refused(items[i], message, field, sink_key, named_by)
            for i, (field, message) in sorted(blamed.items())
        ]
        rest = [item for i, item in enumerate(items) if i not in blamed]
        return results + write_batch(rest, send, service, sink_key, named_by, how)
    middle = len(items) // 2
    return write_batch(items[:middle], send, service, sink_key, named_by, how) + write_batch(
        items[middle:], send, service, sink_key, named_by, how
    )


def write_gifts(
    items: Sequence[WriteItem],
    send: Send,
    service: Service,
    sink_key: Callable[[WriteItem], str],
    sleep: Sleep = time.sleep,
) -> list[WriteResult]:
    """Gift transactions, tried as the service's retry policy allows; then, before a batch is
    declared failed, Virtuous is asked once more: sent again with every record flagged, one it
    holds is refused naming its id (so it counts as written) and one it lacks is taken. Only
    when that fails too are the records failed; they stay in flight for the next run."""
    delivery = Delivery(attempts=service.retry.attempts, policy=service.retry, sleep=sleep)
    by_source: dict[str, list[WriteItem]] = {}
    for item in items:  # one request per transactionSource, named at the top of the body
        by_source.setdefault(str(item.payload.get("transactionSource")), []).append(item)
    results: list[WriteResult] = []
    for group in by_source.values():
        results.extend(_write_or_ask_again(group, send, service, sink_key, delivery))
    return results


def _write_or_ask_again(
    items: Sequence[WriteItem],
    send: Send,
    service: Service,
    sink_key: Callable[[WriteItem], str],
    delivery: Delivery,
) -> list[WriteResult]:
    try:
        return write_batch(items, send, service, sink_key, delivery=delivery)
    except RetriableError as error:
        logger.info(
            "asking Virtuous again before declaring %d gift(s) failed: %s", len(items), error
        )
    flagged = [replace(item, resent=True) for item in items]
    try:
        return write_batch(flagged, send, service, sink_key, delivery=delivery)
    except RetriableError as error:
        reason = f"Virtuous kept failing after retries, and when asked again: {error}"
        return [WriteResult(item.key, Outcome.FAILED, reason=reason) for item in items]


def _deliver(items: Sequence[WriteItem], send: Send, how: Delivery) -> tuple[httpx.Response, bool]:
    """Send until an answer that is not a server error, up to ``how.attempts`` tries; say whether
    a try before the answer may have reached Virtuous (a 5xx, a lost or broken connection).

    Done here, not by the central client, because only here is it known that a repeat refusal
    then means an earlier try of ours arrived.
    """
    repeated = False
    for attempt in range(1, how.attempts + 1):
        try:
            response = send(items)
        except RetriableError:
            if attempt == how.attempts:
                raise
        else:
            if response.status_code < 500 or attempt == how.attempts:
                return response, repeated
            response.close()
        repeated = True
        how.sleep(_backoff(how.policy, attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _backoff(policy: RetryPolicy | None, attempt: int) -> float:
    """Full jitter over the policy's exponential ceiling, as the central client waits."""
    if policy is None:
        return 0.0
    return random.uniform(0.0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))


def _refused(
    item: WriteItem,
    message: str,
    field: str | None,
    sink_key: Callable[[WriteItem], str],
    named_by: Callable[[WriteItem], str | None],
) -> WriteResult:
    """The outcome of one record Virtuous refused, judged by what it said about that record."""
    if _names_its_id(message, field, named_by(item)):
        if item.resent:
            reason = "Virtuous holds it from an earlier attempt whose answer was lost"
            return WriteResult(item.key, Outcome.WRITTEN, sink_key=sink_key(item), reason=reason)
        return WriteResult(
            item.key,
            Outcome.UNCHANGED,
            sink_key=sink_key(item),
            reason="already submitted to Virtuous",
        )
    return WriteResult(
        item.key, Outcome.INVALID, reason=f"Virtuous refused it: {message}", field=field or None
    )


def _names_its_id(message: str, field: str | None, ident: str | None) -> bool:
    """Whether a refusal is about ``ident`` being a repeat: it names the id as a whole word, and
    is about the dedup pair or the transaction as a whole (not, say, its quoted ``notes``)."""
    if not ident or (field or "").lower() not in _ID_FIELDS:
        return False
    word = rf"(?<![\w-]){re.escape(ident)}(?![\w-])"
    return re.search(word, message) is not None


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
    from core.http import error_message, raise_for_status

    if response.status_code == 400:
        msg = f"Virtuous refused it: {error_message(response, service)}"
        raise InvalidRecord(msg)
    raise_for_status(response, service)
