"""What became of gifts a stopped run sent to Virtuous without recording the answer.

``GET /api/Gift/{transactionSource}/{transactionId}`` finds a gift once Virtuous's import has
created it. A transaction still in the import's holding area (or set aside there as "needs
update") is not found, and no documented endpoint lists the holding area. Such a record is sent
again, flagged: Virtuous refuses a transactionId it holds, naming it, which then counts as
written. The window that remains is Virtuous's own: were its duplicate check ever to miss a
transaction in the holding area, that record could be held twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

from connectors.virtuous.gift_transactions import TRANSACTION_PREFIX
from core.outcomes import Outcome, WriteResult

if TYPE_CHECKING:  # with the client, when a run recovers: `validate` needs none of it
    import httpx

    from core.http import Service
    from core.state import InFlight

GIFT_PREFIX = "gift/"


def gift_path(sink_ref: str) -> str | None:
    """``/api/Gift/<source>/<id>`` for a ``txn/<source>/<id>`` reference (kept URL-quoted)."""
    if not sink_ref.startswith(TRANSACTION_PREFIX):
        return None
    parts = sink_ref.split("/", 2)
    return f"/api/Gift/{parts[1]}/{parts[2]}" if len(parts) == 3 else None


def describe(sink_ref: str) -> tuple[str, str]:
    """(transactionSource, transactionId) of a ``txn/<source>/<id>`` reference."""
    _, source, txn = sink_ref.split("/", 2)
    return unquote(source), unquote(txn)


def recover_gifts(
    client: httpx.Client, service: Service, stranded: Sequence[InFlight]
) -> list[WriteResult]:
    """A ``written`` result, with the gift's id, for each stranded gift Virtuous has created;
    nothing for the others (sent again, flagged, when the source yields them)."""
    from core.http import raise_for_status

    found = []
    for item in stranded:
        path = gift_path(item.sink_ref or "")
        if path is None:
            continue
        response = client.get(path)
        if response.status_code == 404:
            continue  # in the holding area, or never arrived: a repeat will tell
        raise_for_status(response, service)
        gift_id = str(response.json()["id"])
        found.append(WriteResult(item.key, Outcome.WRITTEN, sink_key=f"{GIFT_PREFIX}{gift_id}"))
    return found
