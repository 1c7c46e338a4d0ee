"""recipes/virtuous-webhooks-to-mailchimp.yaml end to end, as a user runs it: `connector serve`
as a process between the Virtuous and Mailchimp emulators, its subscription made with
`connector webhooks register`. The import run's ContactCreate reaches Mailchimp through the
server; a contact whose webhook never came is filled in by the reconciling poll."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from tests.connectors.mailchimp.conftest import LIST_ID, Emulator
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, serving_with_mailchimp
from tests.serve_process import Serve

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "virtuous-webhooks-to-mailchimp.yaml"
SECRET = "e2e-virtuous-webhook-secret"


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Virtuous, Emulator]]:
    with serving_with_mailchimp(monkeypatch, SECRET, webhook_delay_scale=0.01) as both:
        yield both


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
    serve = Serve(RECIPE, state)
    try:
        serve.until(lambda: "lost@donors.org" in _emails(mailchimp), "the poll filled the gap")
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
        serve.until(lambda: "ada@donors.org" in _emails(mailchimp), "the webhook was synced")
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
    again = Serve(RECIPE, state)
    try:
        done = (
            'connector_reconcile_runs_total{recipe="virtuous-webhooks-to-mailchimp",result="ok"} 1'
        )
        again.until(lambda: done in httpx.get(f"{again.url}/metrics").text, "a second poll")
        assert _writes(mailchimp) == writes
    finally:
        assert again.stop() == 0, "".join(again.said)
