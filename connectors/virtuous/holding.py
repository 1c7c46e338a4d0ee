"""The import's holding area, read where it can be: why a gift is waiting or was set aside.

Virtuous's API documents no listing of the holding area: a gift the import set aside as "needs
update" shows, with its reason, only under Imports in Virtuous's UI, and is never found by
``GET /api/Gift/{transactionSource}/{transactionId}``. The emulator (``connector sandbox``, the
tests) lists its holding area at ``/_emulator/holding``; it is asked only when Virtuous is on
loopback, where only an emulator can be (plain HTTP is refused anywhere else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # responses come with a run: `validate` imports this module, sends none
    import httpx


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

Held = dict[tuple[str, str], dict[str, Any]]


def read_holding_area(client: httpx.Client) -> Held | None:
    """Each gift transaction held, by (transactionSource, transactionId); None when unknowable."""
    if client.base_url.host not in _LOOPBACK:
        return None
    response = client.get("/_emulator/holding")
    if response.status_code != 200:
        return None
    rows = response.json()
    if not isinstance(rows, list):
        return None
    return {
        (str(row.get("transactionSource")), str(row.get("transactionId"))): row
        for row in rows
        if isinstance(row, dict)
    }
