"""The two-way pair with its Virtuous half served by `connector serve` (Virtuous's webhooks, and
its reconciling poll), as a user runs it: the ContactUpdate that the Mailchimp half's own write
fires comes back through the server as ``echo``, and nothing goes back to Mailchimp (with
Mailchimp owning the names, so that the Mailchimp half writes a name change to Virtuous)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from connectors.mailchimp.service import subscriber_hash
from tests.connectors.mailchimp.conftest import LIST_ID, Emulator, report
from tests.connectors.virtuous.support import Virtuous, serving_with_mailchimp
from tests.serve_process import Serve

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
TO_MAILCHIMP = "virtuous-to-mailchimp-two-way"
TO_VIRTUOUS = "mailchimp-to-virtuous-two-way"
SECRET = "e2e-two-way-webhook-secret"
ADA = "ada@donors.org"

# The Virtuous half, served: Virtuous's contact webhooks, and a poll that fills lost ones.
SERVED = """source:
  use: virtuous.webhook
  with:
    secret: "${VIRTUOUS_WEBHOOK_SECRET}"
    events: [ContactCreate, ContactUpdate]
    api_key: "${VIRTUOUS_API_KEY}"
    base_url: "${VIRTUOUS_BASE_URL}"
reconcile:
  use: virtuous.contacts
  with:
    api_key: "${VIRTUOUS_API_KEY}"
    base_url: "${VIRTUOUS_BASE_URL}"
  every: 15m
"""


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Virtuous, Emulator]]:
    with serving_with_mailchimp(monkeypatch, SECRET, webhook_delay_scale=0.01) as both:
        yield both


def _pair(folder: Path) -> tuple[Path, Path]:
    """The shipped pair, the Virtuous half served, Mailchimp owning the names too."""
    paths = []
    for name in (TO_MAILCHIMP, TO_VIRTUOUS):
        path = Path(shutil.copy(RECIPES / f"{name}.yaml", folder / f"{name}.yaml"))
        text = re.sub(r"(?m)^(      \w+: )virtuous", r"\1mailchimp", path.read_text())
        if name == TO_MAILCHIMP:
            text = re.sub(r"(?ms)^source:.*?(?=^filter:)", SERVED, text)
        path.write_text(text)
        paths.append(path)
    return paths[0], paths[1]


def _mailchimp_writes(mailchimp: Emulator) -> int:
    return sum(1 for r in mailchimp.state.requests if r["method"] not in ("GET", "HEAD"))


def test_the_echo_of_a_write_comes_back_by_webhook_and_is_not_sent_on(
    services: tuple[Virtuous, Emulator], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    virtuous, mailchimp = services
    virtuous.control(
        "POST",
        "seed",
        json={"contacts": [{"firstName": "Ada", "lastName": "Lovelace", "email": ADA}]},
    )
    served, polled = _pair(tmp_path)
    state = tmp_path / ".connector" / "state.db"  # where the polled half keeps its state too
    serve = Serve(served, state)
    try:
        members = mailchimp.state.members[LIST_ID]
        serve.until(lambda: subscriber_hash(ADA) in members, "the poll wrote Ada to Mailchimp")
        url = f"{serve.url}/hooks/{TO_MAILCHIMP}"
        registered = invoke("webhooks", "register", served, "--url", url, "--state", state)
        assert registered.exit_code == 0, registered.output
        assert report(invoke("run", polled, "--json"))["outcomes"]["echo"] == 1

        mailchimp.state.update(LIST_ID, ADA, {"merge_fields": {"FNAME": "Countess"}})
        assert report(invoke("run", polled, "--json"))["outcomes"]["updated"] == 1
        writes = _mailchimp_writes(mailchimp)

        echoed = f'connector_records_total{{recipe="{TO_MAILCHIMP}",outcome="echo"}} 1'
        serve.until(lambda: echoed in httpx.get(f"{serve.url}/metrics").text, "the echo")
        assert [d["event"] for d in virtuous.control("GET", "deliveries")] == ["ContactUpdate"]
        assert _mailchimp_writes(mailchimp) == writes  # nothing went back to Mailchimp
        [contact] = virtuous.state()["contacts"]
        assert contact["contactIndividuals"][0]["firstName"] == "Countess"
    finally:
        assert serve.stop() == 0, "".join(serve.said)
