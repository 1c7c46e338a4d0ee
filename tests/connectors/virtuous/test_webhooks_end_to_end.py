"""recipes/virtuous-webhooks-to-mailchimp.yaml end to end, as a user runs it: `connector serve`
as a process between the Virtuous and Mailchimp emulators, its subscription made with
`connector webhooks register`. The import run's ContactCreate reaches Mailchimp through the
server; a contact whose webhook never came is filled in by the reconciling poll."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from tests.connectors.mailchimp.conftest import API_KEY as MAILCHIMP_KEY
from tests.connectors.mailchimp.conftest import LIST_ID, Emulator
from tests.connectors.mailchimp.conftest import serving as mailchimp_serving
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, running

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "virtuous-webhooks-to-mailchimp.yaml"
CONNECTOR = Path(sys.executable).parent / "connector"
SECRET = "e2e-virtuous-webhook-secret"


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Virtuous, Emulator]]:
    with running(webhook_delay_scale=0.01) as virtuous, mailchimp_serving() as mailchimp:
        for name, value in {
            "VIRTUOUS_BASE_URL": virtuous.url,
            "VIRTUOUS_API_KEY": VIRTUOUS_KEY,
            "VIRTUOUS_WEBHOOK_SECRET": SECRET,
            "MAILCHIMP_BASE_URL": mailchimp.url,
            "MAILCHIMP_API_KEY": MAILCHIMP_KEY,
            "MAILCHIMP_LIST_ID": LIST_ID,
        }.items():
            monkeypatch.setenv(name, value)
        yield virtuous, mailchimp


class Serve:
    """``connector serve RECIPE --port 0``, its stderr read as it comes."""

    def __init__(self, state: Path) -> None:
        command = [str(CONNECTOR), "serve", str(RECIPE), "--port", "0", "--state", str(state)]
        self.process = subprocess.Popen(
            command, env=dict(os.environ), stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        found = re.search(r"listening on (http://[\d.]+:\d+)", self._wait_for("listening on "))
        assert found is not None
        self.url = found.group(1)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.said.append(line)
            self.lines.put(line)

    def _wait_for(self, text: str) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if text in line:
                return line
        pytest.fail(f"connector serve never said {text!r}: {''.join(self.said)}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def _until(condition: Callable[[], bool], what: str, serve: Serve) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}; connector serve said: {''.join(serve.said)}")
        time.sleep(0.1)


def _writes(mailchimp: Emulator) -> int:
    return sum(1 for r in mailchimp.state.requests if r["method"] not in ("GET", "HEAD"))


def _emails(mailchimp: Emulator) -> dict[str, str]:
    return {m.email: m.status for m in mailchimp.state.members[LIST_ID].values()}


def test_import_run_events_reach_mailchimp_through_connector_serve_and_the_poll_fills_gaps(
    services: tuple[Virtuous, Emulator], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    virtuous, mailchimp = services
    # Made before any subscription existed: its ContactCreate was never delivered.
    virtuous.control(
        "POST",
        "seed",
        json={"contacts": [{"firstname": "Lost", "lastname": "Hook", "email": "lost@donors.org"}]},
    )
    state = tmp_path / "state.db"
    serve = Serve(state)
    try:
        _until(lambda: "lost@donors.org" in _emails(mailchimp), "the poll filled the gap", serve)
        url = f"{serve.url}/hooks/virtuous-webhooks-to-mailchimp"
        registered = invoke("webhooks", "register", RECIPE, "--url", url, "--state", state)
        assert registered.exit_code == 0, registered.output
        assert "uses the secret already set in VIRTUOUS_WEBHOOK_SECRET" in registered.stdout
        response = httpx.post(
            f"{virtuous.url}/api/Contact/Transaction",
            json={"firstname": "Ada", "lastname": "Lovelace", "email": "ada@donors.org"},
            headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
        )
        assert response.status_code == 200, response.text
        virtuous.import_now()
        _until(lambda: "ada@donors.org" in _emails(mailchimp), "the webhook was synced", serve)
        [delivered] = virtuous.control("GET", "deliveries")
        assert (delivered["event"], delivered["status"]) == ("ContactCreate", 200)
        ada = mailchimp.state.members[LIST_ID]
        assert {m.email: m.merge_fields.get("FNAME") for m in ada.values()} == {
            "lost@donors.org": "Lost",
            "ada@donors.org": "Ada",
        }
        assert _emails(mailchimp) == {"lost@donors.org": "pending", "ada@donors.org": "pending"}
    finally:
        assert serve.stop() == 0, "".join(serve.said)
    # Started again, the server polls at once: what the webhook wrote is unchanged, not resent.
    writes = _writes(mailchimp)
    assert writes >= 2
    again = Serve(state)
    try:
        done = (
            'connector_reconcile_runs_total{recipe="virtuous-webhooks-to-mailchimp",result="ok"} 1'
        )
        _until(lambda: done in httpx.get(f"{again.url}/metrics").text, "a second poll", again)
        assert _writes(mailchimp) == writes
    finally:
        assert again.stop() == 0, "".join(again.said)
