"""A Virtuous emulator on loopback for the connector's tests, and recipes that use it."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.virtuous.emulator.app import EmulatorSettings, create_app
from core.emulation import EmulatorServer
from tests.connectors.mailchimp.conftest import API_KEY as MAILCHIMP_KEY
from tests.connectors.mailchimp.conftest import LIST_ID, Emulator
from tests.connectors.mailchimp.conftest import serving as mailchimp_serving

KEY = "test-key-6f1d2a9c"


class Virtuous:
    """The running emulator: its URL and its control plane."""

    def __init__(self, server: EmulatorServer, app: Any) -> None:
        self.server = server
        self.app = app
        self.url = server.url
        self.mode = app.state.emulator.settings.transaction_validation

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_emulator/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def import_now(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "import")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self.control("GET", "requests")
        return [r for r in log if path is None or r["path"] == path]

    def gift(self, source: str, transaction_id: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}/api/Gift/{source}/{transaction_id}",
            headers={"Authorization": f"Bearer {KEY}"},
        )


@contextmanager
def running(**settings: Any) -> Iterator[Virtuous]:
    settings.setdefault("api_keys", {KEY: {"org": "org-1"}})
    app = create_app(EmulatorSettings.model_validate(settings))
    with EmulatorServer(app) as server:
        yield Virtuous(server, app)


@contextmanager
def serving(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[Virtuous]:
    """`running`, with the recipes' ${VIRTUOUS_BASE_URL} and ${VIRTUOUS_API_KEY} pointing at it."""
    with running(**settings) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", KEY)
        yield emulator


@contextmanager
def serving_with_mailchimp(
    monkeypatch: pytest.MonkeyPatch, webhook_secret: str, **settings: Any
) -> Iterator[tuple[Virtuous, Emulator]]:
    """`serving`, and a Mailchimp emulator beside it, with the other variables the shipped
    Virtuous-to-Mailchimp recipes read (``VIRTUOUS_WEBHOOK_SECRET``, ``MAILCHIMP_*``)."""
    with serving(monkeypatch, **settings) as virtuous, mailchimp_serving() as mailchimp:
        monkeypatch.setenv("VIRTUOUS_WEBHOOK_SECRET", webhook_secret)
        monkeypatch.setenv("MAILCHIMP_BASE_URL", mailchimp.url)
        monkeypatch.setenv("MAILCHIMP_API_KEY", MAILCHIMP_KEY)
        monkeypatch.setenv("MAILCHIMP_LIST_ID", LIST_ID)
        yield virtuous, mailchimp


def donations_csv(path: Path, count: int, *, start: int = 1, **overrides: dict[str, str]) -> Path:
    rows = []
    for n in range(start, start + count):
        row = {
            "id": f"g-{n}",
            "name": f"Donor{n} Example",
            "email": f"donor{n}@example.org",
            "cents": str(1000 + n),
            "currency": "usd",
            "date": "2025-03-01",
            "fund": "GENERAL",
        }
        row.update(overrides.get(row["id"], {}))
        rows.append(row)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


GIFTS_RECIPE = """\
version: 1
name: gifts
source: {use: file.csv, with: {path: donations.csv, key: id}}
map:
  transactionSource: "'Test'"
  transactionId: record.id
  amount: record.cents | to_int | minor_to_major(record.currency)
  currencyCode: record.currency | upper
  giftDate: record.date
  giftType: "'Credit'"
  contact:
    referenceId: record.email
    firstname: record.name | first_name
    lastname: record.name | last_name
    email: record.email
sink:
  use: virtuous.gift_transactions
  with:
    base_url: "${VIRTUOUS_BASE_URL}"
    api_key: "${VIRTUOUS_API_KEY}"
    batch_size: BATCH
    requests_per_hour: LIMIT
    rate_window_seconds: WINDOW
"""


#: Reverses gifts of :data:`GIFTS_RECIPE`: ``refunds.jsonl`` lines name a gift (its ``id``), a
#: date and the cents refunded.
REFUNDS_RECIPE = """\
version: 1
name: refunds
source: {use: file.jsonl, with: {path: refunds.jsonl, key: id}}
map:
  transactionSource: "'Test'"
  transactionId: record.gift
  giftDate: record.date
  amount: record.cents | minor_to_major('usd')
sink:
  use: virtuous.gift_reversals
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def gifts_recipe(batch: int = 100, limit: int = 5000, window: float = 3600) -> str:
    return (
        GIFTS_RECIPE.replace("BATCH", str(batch))
        .replace("LIMIT", str(limit))
        .replace("WINDOW", str(window))
    )


def report(result: Any) -> dict[str, Any]:
    assert result.exit_code in (0, 1), result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
