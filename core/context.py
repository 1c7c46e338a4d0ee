"""What a source or sink may use while a recipe runs: the state, the ledger, HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.outcomes import LedgerEntry
from core.state import StateStore

if TYPE_CHECKING:
    import httpx

    from core.http import Service


def _ignore(message: str) -> None:
    """The default for ``on_wait``: nobody is watching."""


@dataclass
class Context:
    """Handed to every component of one run.

    ``base_dir`` is the recipe's directory: relative paths in ``with:`` resolve against it.
    ``on_wait`` receives human-readable notes when the run must wait (for a rate limit).
    """

    recipe: str
    base_dir: Path
    state: StateStore
    on_wait: Callable[[str], None] = _ignore
    #: Requests this context's clients sent (retries included): the budget the run spent.
    requests_sent: int = 0
    _clients: list[httpx.Client] = field(default_factory=list, repr=False)
    _counting: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def path(self, value: str | Path) -> Path:
        """Resolve a path from the recipe against the recipe's directory."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def ledger_entry(self, key: str) -> LedgerEntry | None:
        """What the ledger remembers about a source key of this recipe (for refunds, updates)."""
        return self.state.ledger(self.recipe, [key]).get(key)

    def http_client(self, service: Service, auth: httpx.Auth | None = None) -> httpx.Client:
        """The central client for ``service``; closed when the run ends.

        Its rate budget and tokens are kept in this run's state store, so every process that
        uses the same credential on this host shares one budget.
        """
        import httpx

        from core.http import build_client, store_for
        from core.http.counted import CountedTransport

        client = build_client(
            service,
            auth,
            store=store_for(self.state),
            on_wait=self.on_wait,
            transport=CountedTransport(httpx.HTTPTransport(), self._count_request),
        )
        self._clients.append(client)
        return client

    def _count_request(self) -> None:
        with self._counting:  # batches may be written from more than one thread
            self.requests_sent += 1

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
