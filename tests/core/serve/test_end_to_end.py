"""End to end: the Virtuous emulator's import run fires its webhooks to ``connector serve``, which
updates the Mailchimp emulator through the shipped recipe virtuous-webhooks-to-mailchimp; what was
lost before the subscription existed is filled in by the reconciling poll, and nothing is written
twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from connectors.mailchimp.service import subscriber_hash
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, Emulator
from tests.connectors.mailchimp.conftest import serving as mailchimp_serving
from tests.connectors.virtuous.support import KEY, Virtuous, running
from tests.serve_process import Serve

ROOT = Path(__file__).resolve().parents[3]
SECRET = "whsec-e2e-5b1c"
CONTACTS = "virtuous-webhooks-to-mailchimp"

GIFTS = """\
version: 1
name: virtuous-gift-hooks
source:
  use: virtuous.webhook
  with: {secret: "${VIRTUOUS_WEBHOOK_SECRET}", events: [GiftCreate],
         api_key: "${VIRTUOUS_API_KEY}", base_url: "${VIRTUOUS_BASE_URL}"}
reconcile:
  use: virtuous.gifts
  with: {api_key: "${VIRTUOUS_API_KEY}", base_url: "${VIRTUOUS_BASE_URL}"}
  every: 1h
map:
  id: record.id
  amount: record.amount
  donor: record.contactName
sink:
  use: file.jsonl
  with: {path: gifts.jsonl}
"""


@pytest.fixture
def virtuous() -> Iterator[Virtuous]:
    with running(webhook_delay_scale=0.001) as emulator:
        yield emulator


@pytest.fixture
def mailchimp() -> Iterator[Emulator]:
    with mailchimp_serving() as emulator:
        yield emulator


def _gift(virtuous: Virtuous, transaction_id: str, first: str, email: str) -> None:
    body = {
        "transactionSource": "E2E",
        "transactionId": transaction_id,
        "amount": "40.00",
        "giftDate": "2026-03-01",
        "giftType": "Credit",
        "contact": {"firstname": first, "lastname": "Example", "email": email},
    }
    answer = httpx.post(
        f"{virtuous.url}/api/v2/Gift/Transaction",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert answer.status_code == 200, answer.text


def _subscribe(virtuous: Virtuous, url: str, events: list[str]) -> None:
    toggles = {e[0].lower() + e[1:]: True for e in events}
    answer = httpx.post(
        f"{virtuous.url}/api/Webhook",
        json={"payloadUrl": url, "active": True, "secret": SECRET, **toggles},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert answer.status_code < 300, answer.text


def _until(what: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            pytest.fail("gave up waiting")
        time.sleep(0.1)


class Serving(Serve):
    """``connector serve`` on both recipes, as a user starts it."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        super().__init__(list(RECIPES.values()), cwd=folder, env=env)

    def outcomes(self, recipe: str) -> dict[str, int]:
        text = httpx.get(f"{self.url}/metrics").text
        pattern = rf'^connector_records_total{{recipe="{recipe}",outcome="(\w+)"}} (\d+)$'
        found = {m.group(1): int(m.group(2)) for m in re.finditer(pattern, text, re.M)}
        found["polls"] = self.count("connector_reconcile_runs_total", recipe=recipe, result="ok")
        found["events"] = self.count("connector_webhook_events_processed_total", recipe=recipe)
        return found

    def stop(self) -> int:
        code = super().stop()
        assert code == 0, "".join(self.said)
        return code


#: The shipped recipe of contacts into Mailchimp, and one of gifts into a file (a gift carries no
#: email address, so a gift event cannot make a Mailchimp member).
RECIPES = {"virtuous-gift-hooks": "gifts.yaml", CONTACTS: f"{CONTACTS}.yaml"}


def test_the_import_run_fires_webhooks_that_update_mailchimp_and_the_poll_fills_what_was_lost(
    virtuous: Virtuous, mailchimp: Emulator, tmp_path: Path
) -> None:
    # Ada's gift is imported before any subscription exists: its webhooks are lost.
    _gift(virtuous, "t-ada", "Ada", "ada@donors.org")
    virtuous.import_now()
    (tmp_path / "gifts.yaml").write_text(GIFTS, encoding="utf-8")
    shutil.copy(ROOT / "recipes" / f"{CONTACTS}.yaml", tmp_path)
    env = {
        **os.environ,
        "VIRTUOUS_WEBHOOK_SECRET": SECRET,
        "VIRTUOUS_API_KEY": KEY,
        "VIRTUOUS_BASE_URL": virtuous.url,
        "MAILCHIMP_API_KEY": API_KEY,
        "MAILCHIMP_LIST_ID": LIST_ID,
        "MAILCHIMP_BASE_URL": mailchimp.url,
    }
    server = Serving(tmp_path, env)
    try:
        _subscribe(virtuous, f"{server.url}/hooks/virtuous-gift-hooks", ["GiftCreate"])
        _subscribe(virtuous, f"{server.url}/hooks/{CONTACTS}", ["ContactCreate"])
        # Grace's gift is imported while the server listens: the import run delivers it.
        _gift(virtuous, "t-grace", "Grace", "grace@donors.org")
        virtuous.import_now()
        _until(lambda: _members(mailchimp) == {"ada@donors.org", "grace@donors.org"})
        _until(lambda: len(_lines(tmp_path / "gifts.jsonl")) == 2)
        for recipe in RECIPES:
            # Ada by the poll when the server started, Grace by her webhooks.
            _until(lambda r=recipe: server.outcomes(r).get("written") == 2)
            assert server.outcomes(recipe)["polls"] == 1
            assert server.outcomes(recipe)["events"] >= 1
    finally:
        server.stop()
    delivered = [(d["event"], d["delivered"]) for d in virtuous.control("GET", "deliveries")]
    assert ("GiftCreate", True) in delivered
    assert ("ContactCreate", True) in delivered
    # Started again, the poll reads Grace, whom her webhooks wrote: unchanged, not sent again.
    again = Serving(tmp_path, env)
    try:
        for recipe in RECIPES:
            _until(lambda r=recipe: again.outcomes(r)["polls"] == 1)
            outcomes = again.outcomes(recipe)
            assert outcomes.get("unchanged", 0) >= 1
            assert "written" not in outcomes
            assert "updated" not in outcomes
    finally:
        again.stop()
    gifts = _lines(tmp_path / "gifts.jsonl")
    assert sorted(gift["donor"] for gift in gifts) == ["Ada Example", "Grace Example"]
    member = mailchimp.state.member(LIST_ID, subscriber_hash("grace@donors.org"))
    assert member.merge_fields["FNAME"] == "Grace"


def _members(mailchimp: Emulator) -> set[str]:
    return {member.email for member in mailchimp.state.audience(LIST_ID).values()}


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
