"""recipes/givebutter-webhooks-to-virtuous-gifts.yaml end to end, as a user runs it: the webhook
made with `connector webhooks register` (the secret it makes goes in the URL), `connector serve`
as a process between the Givebutter and Virtuous emulators. An announced transaction is read
again and becomes a gift; a refund of it changes nothing sent; a transaction announced to nobody
is filled in by the reconciling poll; each gift is written once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from connectors.givebutter.emulator.app import EmulatorSettings, GivebutterState, create_app
from core.emulation import EmulatorServer
from tests.connectors.virtuous.support import Virtuous, serving
from tests.serve_process import Serve, free_port

NAME = "givebutter-webhooks-to-virtuous-gifts"
RECIPE = Path(__file__).resolve().parents[3] / "recipes" / f"{NAME}.yaml"
KEY = "gb-e2e-webhooks-key-42"
PROJECTS = [{"name": "General", "code": "GENERAL"}]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GivebutterState, Virtuous]]:
    app = create_app(EmulatorSettings(api_keys=[KEY], webhook_delay_scale=0.001))
    with EmulatorServer(app) as server, serving(monkeypatch) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        monkeypatch.setenv("GIVEBUTTER_API_KEY", KEY)
        monkeypatch.setenv("GIVEBUTTER_BASE_URL", server.url)
        monkeypatch.delenv("GIVEBUTTER_WEBHOOK_SECRET", raising=False)
        yield app.state.emulator, virtuous


def test_announced_transactions_are_read_again_and_become_gifts_once(
    services: tuple[GivebutterState, Virtuous],
    invoke: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    givebutter, virtuous = services
    (lost,) = givebutter.seed_kinds("succeeded")  # before any webhook: only the poll sees it
    state, port = tmp_path / "state.db", free_port()
    url = f"http://127.0.0.1:{port}/hooks/{NAME}"
    registered = invoke("webhooks", "register", RECIPE, "--url", url, "--state", state)
    assert registered.exit_code == 0, registered.output
    found = re.search(r"^GIVEBUTTER_WEBHOOK_SECRET=(\S+)$", registered.stdout, re.M)
    assert found is not None, registered.stdout
    secret = found.group(1)
    assert secret not in registered.stdout.replace(found.group(0), "")  # shown once, as the line
    (hook,) = givebutter.webhooks.values()
    assert hook["url"] == f"{url}?secret={secret}"
    monkeypatch.setenv("GIVEBUTTER_WEBHOOK_SECRET", secret)
    serve = Serve(RECIPE, state, port)

    def written() -> int:
        return serve.count("connector_records_total", outcome="written")

    try:
        serve.until(lambda: written() == 1, "the poll wrote the transaction with no webhook")
        (paid,) = givebutter.seed_kinds("succeeded")
        serve.until(lambda: written() == 2, "the announced transaction became a gift")
        processed = serve.count("connector_webhook_events_processed_total")
        givebutter.refund(paid["id"])  # refund.created: read again, refunded, filtered
        serve.until(
            lambda: serve.count("connector_webhook_events_processed_total") == processed + 1,
            "the refund was processed",
        )
        assert written() == 2
    finally:
        assert serve.stop() == 0, "".join(serve.said)
    assert virtuous.import_now()["giftsCreated"] == 2
    assert virtuous.gift("Givebutter", str(paid["id"])).status_code == 200
    assert virtuous.gift("Givebutter", str(lost["id"])).status_code == 200
