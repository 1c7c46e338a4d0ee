"""recipes/donorbox-webhooks-to-virtuous-gifts.yaml end to end, as a user runs it: a custom webhook
added as in Donorbox's dashboard, `connector serve` as a process between the Donorbox and
Virtuous emulators. New donations become gifts keyed as the polling recipe keys them; a
delivery sent again is acknowledged and writes nothing twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.donorbox.emulator.app import DonorboxState, EmulatorSettings, create_app
from connectors.donorbox.emulator.shapes import rendered
from core.emulation import EmulatorServer
from tests.connectors.virtuous.support import Virtuous, serving
from tests.serve_process import Serve, free_port

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
RECIPE = RECIPES / "donorbox-webhooks-to-virtuous-gifts.yaml"
NAME = "donorbox-webhooks-to-virtuous-gifts"
SECRET = "dbx-e2e-signature-secret-31"
PROJECTS = [{"name": "General Fund", "code": "GENERAL"}]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EmulatorServer, Virtuous]]:
    app = create_app(EmulatorSettings(webhook_delay_scale=0.001))
    with EmulatorServer(app) as donorbox, serving(monkeypatch) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        monkeypatch.setenv("DONORBOX_WEBHOOK_SECRET", SECRET)
        yield donorbox, virtuous


def test_new_donations_become_gifts_through_connector_serve_once_each(
    services: tuple[EmulatorServer, Virtuous], tmp_path: Path
) -> None:
    donorbox, virtuous = services
    state: DonorboxState = donorbox.app.state.emulator  # type: ignore[attr-defined]
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/{NAME}"
    hook = {"url": url, "events": ["donation.created"], "secret": SECRET}
    httpx.post(f"{donorbox.url}/_emulator/webhooks", json=hook).raise_for_status()
    serve = Serve(RECIPE, tmp_path / "state.db", port)

    def processed() -> int:
        return serve.count("connector_webhook_events_processed_total")

    try:
        card, paypal = state.seed(
            given=[
                {"donation_type": "stripe", "stripe_charge_id": "ch_e2e_card"},
                {"donation_type": "paypal", "stripe_charge_id": None},
            ]
        )
        serve.until(lambda: processed() == 2, "both donations were processed")
        assert state.subscribers.deliverer.wait_idle(10)
        # Donorbox sending the card donation again (a retry whose answer was lost).
        body = json.dumps([{"action": "new", **rendered(card, "per_sample", "stays_paid")}])
        stamp = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
        again = httpx.post(url, content=body, headers={"Donorbox-Signature": f"{stamp},{mac}"})
        assert again.status_code == 200
        serve.until(lambda: processed() == 3, "the repeated delivery was processed")
    finally:
        assert serve.stop() == 0, "".join(serve.said)
    assert virtuous.import_now()["giftsCreated"] == 2
    assert virtuous.gift("Stripe", "ch_e2e_card").status_code == 200
    assert virtuous.gift("Donorbox", str(paypal["id"])).status_code == 200
