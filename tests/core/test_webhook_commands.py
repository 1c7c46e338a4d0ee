"""``connector webhooks register|list|remove`` against the Virtuous and Mailchimp emulators."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

from connectors.virtuous.webhook import signature
from tests.connectors.mailchimp.conftest import API_KEY as MAILCHIMP_KEY
from tests.connectors.mailchimp.conftest import LIST_ID
from tests.connectors.mailchimp.conftest import serving as mailchimp_serving
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, running
from tests.receiver import Receiver, receiving

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
VIRTUOUS_RECIPE = RECIPES / "virtuous-webhooks-to-mailchimp.yaml"


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch) -> Iterator[Virtuous]:
    """The shipped recipe's services: a Virtuous emulator, and a Mailchimp it never reaches."""
    with running(webhook_delay_scale=0.001) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", VIRTUOUS_KEY)
        monkeypatch.setenv("MAILCHIMP_API_KEY", "unused-us1")
        monkeypatch.setenv("MAILCHIMP_LIST_ID", "unused")
        monkeypatch.delenv("VIRTUOUS_WEBHOOK_SECRET", raising=False)
        yield emulator


@pytest.fixture
def webhooks(invoke: Callable[..., Result], tmp_path: Path) -> Callable[..., Result]:
    """``connector webhooks ...`` with the state in the test's folder."""

    def run(*args: str | Path) -> Result:
        return invoke("webhooks", *args, "--state", tmp_path / "state.db")

    return run


def _secret(output: str, variable: str) -> str:
    found = re.search(rf"^{variable}=(\S+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_register_makes_a_secret_that_signs_the_deliveries_and_prints_its_env_line(
    virtuous: Virtuous, webhooks: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiving("/hooks/virtuous-webhooks-to-mailchimp") as receiver:
        result = webhooks("register", VIRTUOUS_RECIPE, "--url", receiver.url)
        assert result.exit_code == 0, result.output
        assert "registered webhook 1 (ContactCreate, ContactUpdate)" in result.stdout
        secret = _secret(result.stdout, "VIRTUOUS_WEBHOOK_SECRET")
        [hook] = virtuous.app.state.emulator.webhooks.values()
        assert (hook.secret, hook.payload_url) == (secret, receiver.url)
        assert (hook.toggles["contactCreate"], hook.toggles["giftCreate"]) == (True, False)
        _contact_arrives(virtuous, receiver)
        [delivery] = receiver.posts()
        assert delivery.headers["x-virtuous-signature"] == signature(secret, delivery.body)
        monkeypatch.setenv("VIRTUOUS_WEBHOOK_SECRET", secret)
        again = webhooks("register", VIRTUOUS_RECIPE, "--url", receiver.url)
        assert "uses the secret already set in VIRTUOUS_WEBHOOK_SECRET" in again.stdout
        assert secret not in again.output


def _contact_arrives(virtuous: Virtuous, receiver: Receiver) -> None:
    response = httpx.post(
        f"{virtuous.url}/api/Contact/Transaction",
        json={"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org"},
        headers={"Authorization": f"Bearer {VIRTUOUS_KEY}"},
    )
    assert response.status_code == 200, response.text
    virtuous.import_now()
    assert receiver.wait_for(lambda posts: len(posts) == 1)


def test_list_shows_the_subscriptions_and_remove_deletes_one(
    virtuous: Virtuous, webhooks: Callable[..., Result]
) -> None:
    url = "https://hooks.example.org/hooks/virtuous-webhooks-to-mailchimp"
    for _ in range(2):
        assert webhooks("register", VIRTUOUS_RECIPE, "--url", url).exit_code == 0
    listed = webhooks("list", VIRTUOUS_RECIPE)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        f"1  {url}  (ContactCreate, ContactUpdate)",
        f"2  {url}  (ContactCreate, ContactUpdate)",
    ]
    removed = webhooks("remove", VIRTUOUS_RECIPE, "1")
    assert (removed.exit_code, removed.stdout) == (0, "removed webhook 1\n")
    assert webhooks("list", VIRTUOUS_RECIPE).stdout.startswith("2  ")
    missing = webhooks("remove", VIRTUOUS_RECIPE, "1")
    assert missing.exit_code == 3
    assert "Virtuous has no webhook 1" in missing.output
    assert set(virtuous.app.state.emulator.webhooks) == {2}


def _audience_recipe(write_recipe: Callable[..., Path], base_url: str, tmp_path: Path) -> Path:
    return write_recipe(
        f"""
        version: 1
        name: audience
        source:
          use: mailchimp.webhook
          with:
            secret: "${{AUDIENCE_HOOK_SECRET}}"
            api_key: {MAILCHIMP_KEY}
            list_id: {LIST_ID}
            base_url: {base_url}
            events: [subscribe, unsubscribe]
        sink:
          use: file.jsonl
          with: {{path: {tmp_path / "out.jsonl"}}}
        """
    )


def test_mailchimp_keeps_the_secret_in_the_url_and_list_does_not_show_it(
    webhooks: Callable[..., Result],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "s3cret-for-the-url"
    monkeypatch.setenv("AUDIENCE_HOOK_SECRET", secret)
    with mailchimp_serving() as mailchimp, receiving("/hooks/audience") as receiver:
        recipe = _audience_recipe(write_recipe, mailchimp.url, tmp_path)
        result = webhooks("register", recipe, "--url", receiver.url)
        assert result.exit_code == 0, result.output
        assert "it uses the secret already set in AUDIENCE_HOOK_SECRET" in result.stdout
        [hook] = mailchimp.state.webhooks[LIST_ID].values()
        assert hook.url == f"{receiver.url}?secret={secret}"
        assert receiver.deliveries[0].method == "GET"  # Mailchimp's check of the URL
        listed = webhooks("list", recipe)
        assert listed.stdout == f"{hook.id}  {receiver.url}?secret=***  (subscribe, unsubscribe)\n"
        assert webhooks("remove", recipe, hook.id).exit_code == 0
        assert webhooks("list", recipe).stdout == "no webhooks for audience on mailchimp.webhook\n"


def test_mailchimp_with_its_secret_unset_is_refused_before_subscribing(
    webhooks: Callable[..., Result],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mailchimp checks the URL with a GET that only connector serve, started with the secret,
    can answer: a secret made by register could never pass it."""
    monkeypatch.delenv("AUDIENCE_HOOK_SECRET", raising=False)
    with mailchimp_serving() as mailchimp:
        recipe = _audience_recipe(write_recipe, mailchimp.url, tmp_path)
        result = webhooks("register", recipe, "--url", "https://hooks.example.org/hooks/audience")
        assert result.exit_code == 2, result.output
        assert "set AUDIENCE_HOOK_SECRET to a new secret in" in result.stderr
        assert f"start `connector serve {recipe}`, then register" in result.stderr
        assert f"{recipe}:" in result.stderr  # where: the recipe's secret: line
        assert not mailchimp.state.webhooks.get(LIST_ID)


@pytest.mark.parametrize(
    ("recipe", "url", "code", "message"),
    [
        (RECIPES / "virtuous-contacts-to-mailchimp.yaml", "https://h.org/x", 2, "is polled"),
        (VIRTUOUS_RECIPE, "http://hooks.example.org/x", 3, "refusing plain http://"),
        (VIRTUOUS_RECIPE, "ftp://hooks.example.org/x", 3, "unsupported URL scheme"),
    ],
)
def test_what_cannot_be_registered_is_refused_in_one_line(
    virtuous: Virtuous,
    webhooks: Callable[..., Result],
    recipe: Path,
    url: str,
    code: int,
    message: str,
) -> None:
    result = webhooks("register", recipe, "--url", url)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert virtuous.app.state.emulator.webhooks == {}


def test_a_secret_written_in_the_recipe_is_refused_where_it_stands(
    virtuous: Virtuous, webhooks: Callable[..., Result], write_recipe: Callable[..., Path]
) -> None:
    text = VIRTUOUS_RECIPE.read_text().replace('"${VIRTUOUS_WEBHOOK_SECRET:-}"', "hunter2")
    result = webhooks("register", write_recipe(text), "--url", "https://h.org/x")
    assert result.exit_code == 2
    assert "recipe.yaml:" in result.output
    assert "must name an environment variable" in result.output
