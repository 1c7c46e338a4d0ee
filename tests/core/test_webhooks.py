"""The helpers every webhook source verifies deliveries with (``core.webhooks``)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from core import emulation
from core.errors import ConnectorError
from core.webhooks import (
    Delivery,
    WebhookRejected,
    WebhookSettings,
    WebhookSource,
    check_url_secret,
    hmac_sha256,
    masked,
    same_secret,
    signature_header,
)

SECRET = "s3cret-in-the-url"


def _delivery(query: dict[str, str]) -> Delivery:
    return Delivery("POST", {}, query, b"{}", 0.0)


def test_hmac_sha256_matches_the_published_example() -> None:
    message = b"The quick brown fox jumps over the lazy dog"
    assert hmac_sha256("key", message) == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    assert hmac_sha256("key", message, "base64") == "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="


def test_emulators_sign_with_the_function_sources_verify_with() -> None:
    assert emulation.hmac_sha256 is hmac_sha256


@pytest.mark.parametrize(
    ("given", "same"),
    [(SECRET, True), (SECRET + "x", False), (SECRET[:-1], False), ("", False), ("é", False)],
)
def test_same_secret_is_equality(given: str, same: bool) -> None:
    assert same_secret(given, SECRET) is same


def test_a_delivery_with_the_urls_secret_is_accepted() -> None:
    check_url_secret(_delivery({"token": SECRET}), "token", SECRET, "Example")


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ({}, r"Example delivery without \?token= in its URL"),
        ({"token": ""}, r"without \?token="),
        ({"secret": SECRET}, r"without \?token="),
        ({"token": "guessed"}, "wrong secret"),
    ],
)
def test_a_delivery_without_the_urls_secret_is_refused_without_showing_it(
    query: dict[str, str], why: str
) -> None:
    with pytest.raises(WebhookRejected, match=why) as refused:
        check_url_secret(_delivery(query), "token", SECRET, "Example")
    assert SECRET not in str(refused.value)


class _Source(WebhookSource):
    name: ClassVar[str] = "example.webhook"
    Settings: ClassVar[type[BaseModel]] = WebhookSettings
    settings: WebhookSettings

    def __init__(self, secret: str | None) -> None:  # no context: only the settings are read
        self.settings = WebhookSettings.model_validate({"secret": secret})


def test_the_signing_secret_is_the_settings_secret() -> None:
    assert _Source(SECRET).signing_secret("the dashboard") == SECRET


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_without_a_secret_no_delivery_can_be_verified(secret: str | None) -> None:
    with pytest.raises(WebhookRejected, match=r"example.webhook has no secret.*\(the dashboard\)"):
        _Source(secret).signing_secret("the dashboard")


class _KnownSettings(WebhookSettings):
    known_events: ClassVar[tuple[str, ...]] = ("gift.created", "gift.updated")


def test_events_are_chosen_from_the_known_ones_if_a_source_names_them() -> None:
    assert _KnownSettings(events=["gift.updated"]).events == ["gift.updated"]
    assert WebhookSettings(events=["anything"]).events == ["anything"]
    with pytest.raises(
        ValidationError,
        match="unknown event 'gift.deleted'; choose from gift.created, gift.updated",
    ):
        _KnownSettings(events=["gift.created", "gift.deleted"])


def test_the_signature_header_is_read_whatever_its_case_and_required() -> None:
    signed = Delivery("POST", {"x-example-signature": " t=1,v1=ab "}, {}, b"{}", 0.0)
    assert signature_header(signed, "X-Example-Signature", "Example") == "t=1,v1=ab"
    for headers in ({}, {"x-example-signature": "  "}):
        unsigned = Delivery("POST", headers, {}, b"{}", 0.0)
        with pytest.raises(WebhookRejected, match="Example delivery without a X-Example-Signature"):
            signature_header(unsigned, "X-Example-Signature", "Example")


def test_the_url_secret_is_the_settings_secret_and_needed_to_subscribe() -> None:
    assert _Source(SECRET).url_secret() == SECRET
    with pytest.raises(ConnectorError, match="set with: secret: before subscribing"):
        _Source("  ").url_secret()


def test_a_subscriptions_url_is_shown_with_its_secret_masked() -> None:
    url = f"https://hooks.example.org/hooks/gifts?secret={SECRET}&x=1"
    assert masked(url) == "https://hooks.example.org/hooks/gifts?x=1&secret=***"
    assert (
        masked(f"https://h.example.org/?token={SECRET}", "token")
        == "https://h.example.org/?token=***"
    )
    assert masked("https://h.example.org/hooks") == "https://h.example.org/hooks"
