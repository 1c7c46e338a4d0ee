"""The server's test bench: a recipe of ``test.webhook`` into a file, its app and its worker."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.context import Context
from core.emulation.server import EmulatorServer
from core.plugins import load_plugin_manager
from core.recipe import Recipe, load_recipe
from core.registry import Registry
from core.serve.app import Served, build_app
from core.serve.drain import Drainer, DrainSettings
from core.serve.metrics import Metrics
from core.serve.server import reported_budgets
from core.serve.store_thread import StoreThread
from core.state import open_state
from core.webhooks import WebhookSource
from tests.conftest import read_jsonl
from tests.core.serve.signed import SignedPlugin, delivery

RECIPE = """
version: 1
name: hooks
source:
  use: test.webhook
  with: {{secret: "${{TEST_WEBHOOK_SECRET}}"{source_extra}}}
map:
  id: record.id
  amount: record.amount
sink:
  use: {sink}
{reconcile}
"""

FILE_SINK = "file.jsonl\n  with: {path: out.jsonl}"


def recipe_text(*, sink: str = FILE_SINK, source_extra: str = "", reconcile: str = "") -> str:
    return (
        textwrap.dedent(RECIPE)
        .lstrip()
        .format(sink=sink, source_extra=source_extra, reconcile=reconcile)
    )


@pytest.fixture(scope="session")
def test_registry() -> Registry:
    loaded = load_plugin_manager(load_entrypoints=False)
    loaded.pm.register(SignedPlugin(), "test-webhooks")
    return Registry.build(loaded.pm, loaded.failures)


class Bench:
    """One recipe served in process: post deliveries through the app, drain by hand."""

    def __init__(
        self,
        directory: Path,
        registry: Registry,
        text: str,
        drain: DrainSettings,
        location: str | None = None,
    ):
        self.directory = directory
        path = directory / "recipe.yaml"
        path.write_text(text, encoding="utf-8")
        self.recipe: Recipe = load_recipe(
            path, registry, env={"TEST_WEBHOOK_SECRET": "test-webhook-secret"}
        )
        # A SQLite file in the folder, or the Postgres schema of the test (``state_location``).
        self.location = location or str(directory / "state.db")
        self.metrics = Metrics()
        self.inbox = StoreThread(lambda: open_state(self.location))
        self.store = open_state(self.location)
        source = self.recipe.source_class(
            self.recipe.source_settings, Context("hooks", directory, self.store)
        )
        assert isinstance(source, WebhookSource)
        self.served = Served(self.recipe, source, self.inbox, threading.Event())
        app = build_app({"hooks": self.served}, self.metrics, reported_budgets([self.store]))
        self.server = EmulatorServer(app).start()
        self.client = httpx.Client(base_url=self.server.url, timeout=30)
        self.drainer = Drainer(
            self.recipe, lambda: open_state(self.location), self.metrics, settings=drain
        )

    def post(self, *events: dict[str, Any], **headers: str) -> Any:
        body, signed = delivery(*events)
        return self.client.post("/hooks/hooks", content=body, headers={**signed, **headers})

    def drain(self) -> int:
        """Drain until nothing is due; how many batches it took."""
        batches = 0
        while self.drainer.drain_once(self.store, self.store):
            batches += 1
        return batches

    def out(self, name: str = "out.jsonl") -> list[dict[str, Any]]:
        path = self.directory / name
        return read_jsonl(path) if path.exists() else []

    def close(self) -> None:
        self.client.close()
        self.server.stop()
        self.inbox.close()
        self.store.close()


@pytest.fixture
def bench(
    tmp_path: Path, test_registry: Registry, state_location: str
) -> Iterator[Callable[..., Bench]]:
    """Benches on each state backend (SQLite, and Postgres: its inbox is drained the same way)."""
    made: list[Bench] = []

    def make(text: str | None = None, drain: DrainSettings | None = None) -> Bench:
        made.append(
            Bench(
                tmp_path,
                test_registry,
                text or recipe_text(),
                drain or DrainSettings(first_backoff=0),
                state_location,
            )
        )
        return made[-1]

    yield make
    for one in made:
        one.close()
