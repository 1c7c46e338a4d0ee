"""recipes/stripe-webhooks-to-virtuous-gifts.yaml end to end, as a user runs it: the endpoint
made with `connector webhooks register` (which prints Stripe's whsec_ secret), `connector serve`
as a process between the Stripe and Virtuous emulators. A charge's event becomes a gift through
the server; a charge refunded before it was written never does; a charge whose webhook was never
sent is filled in by the reconciling poll; each gift is written once."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from connectors.stripe.emulator.app import EmulatorSettings, create_app
from core.emulation import EmulatorServer
from tests.connectors.stripe.conftest import KEY, Emulator
from tests.connectors.virtuous.support import Virtuous, serving
from tests.serve_process import Serve, free_port

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "stripe-webhooks-to-virtuous-gifts.yaml"
NAME = "stripe-webhooks-to-virtuous-gifts"
PROJECTS = [{"name": "General Fund", "code": "GENERAL"}, {"name": "Missions", "code": "MISSIONS"}]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Emulator, Virtuous]]:
    app = create_app(EmulatorSettings(api_keys=[KEY], webhook_delay_scale=0.001))
    with EmulatorServer(app) as server, serving(monkeypatch) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        monkeypatch.setenv("STRIPE_API_KEY", KEY)
        monkeypatch.setenv("STRIPE_BASE_URL", server.url)
        monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
        yield Emulator(server), virtuous


def _charge(stripe: Emulator, name: str, **spec: object) -> dict[str, object]:
    customer = {"name": name, "email": f"{name.split()[0].lower()}@donors.org"}
    return stripe.store.seed_charge({"amount": 2500, "customer": customer, **spec})


def test_charge_events_become_gifts_through_connector_serve_and_the_poll_fills_gaps(
    services: tuple[Emulator, Virtuous],
    invoke: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stripe, virtuous = services
    lost = _charge(stripe, "Lost Hook", created=int(time.time()) - 3600)  # before any endpoint
    state, port = tmp_path / "state.db", free_port()
    url = f"http://127.0.0.1:{port}/hooks/{NAME}"
    registered = invoke("webhooks", "register", RECIPE, "--url", url, "--state", state)
    assert registered.exit_code == 0, registered.output
    found = re.search(r"^STRIPE_WEBHOOK_SECRET=(whsec_\S+)$", registered.stdout, re.M)
    assert found is not None, registered.stdout
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", found.group(1))
    listed = invoke("webhooks", "list", RECIPE, "--state", state)
    assert url in listed.stdout
    serve = Serve(RECIPE, state, port)

    def written() -> int:
        return serve.count("connector_records_total", outcome="written")

    try:
        serve.until(lambda: written() == 1, "the poll wrote the charge with no webhook")
        paid = _charge(stripe, "Ada Lovelace", metadata={"designation": "missions"})
        _charge(stripe, "Refunded Before", refunds=[{}])  # succeeded, then refunded at once
        deliverer = stripe.store.deliverer
        assert deliverer is not None
        serve.until(lambda: written() == 2, "the webhook's charge became a gift")
        assert deliverer.wait_idle(30)
        assert all(a.delivered for a in deliverer.attempts())
        kinds = sorted(a.label for a in deliverer.attempts())
        assert kinds == ["charge.refunded", "charge.succeeded", "charge.succeeded"]
    finally:
        assert serve.stop() == 0, "".join(serve.said)
    assert virtuous.import_now()["giftsCreated"] == 2  # each once; the refunded one never
    gift = virtuous.gift("Stripe", str(paid["id"])).json()
    assert gift["amount"] == 25.0
    assert [d["projectCode"] for d in gift["giftDesignations"]] == ["MISSIONS"]
    assert virtuous.gift("Stripe", str(lost["id"])).status_code == 200
