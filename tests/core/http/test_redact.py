"""Secrets never reach logs or error messages: the redactors by shape and by value, the log filter,
and the whole client end to end (a fake key must be absent from every log line and error)."""

from __future__ import annotations

import logging

import httpx
import pytest

from core.errors import AuthError, ConnectorError, InvalidRecord, RetriableError
from core.http import (
    BearerToken,
    QueryKey,
    RetryPolicy,
    SecretFilter,
    Service,
    build_client,
    raise_for_status,
    redact_headers,
    redact_text,
    redact_url,
    register_secret,
)
from tests.core.http.fakes import FakeServer

FAKE_KEY = "sk_fake_Zq8Jw2Lr5Tn7Vx9Pk4Hm"


def test_redact_headers_masks_credentials_by_name() -> None:
    headers = {
        "Authorization": "Bearer abc",
        "Cookie": "session=1",
        "X-Api-Key": "k",
        "X-Mailchimp-Token": "t",
        "Client-Secret": "s",
        "X-Password": "p",
        "Content-Type": "application/json",
        "Accept": "*/*",
    }
    assert redact_headers(headers) == {
        "Authorization": "***",
        "Cookie": "***",
        "X-Api-Key": "***",
        "X-Mailchimp-Token": "***",
        "Client-Secret": "***",
        "X-Password": "***",
        "Content-Type": "application/json",
        "Accept": "*/*",
    }
    assert redact_headers(httpx.Headers({"authorization": "x"}).items()) == {"authorization": "***"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/p?api_key=abc&page=2", "https://h/p?api_key=***&page=2"),
        (
            "https://h/p?key=abc&token=t&access_token=a",
            "https://h/p?key=***&token=***&access_token=***",
        ),
        ("https://h/p?secret=s&password=p&x=1", "https://h/p?secret=***&password=***&x=1"),
        ("https://h/p?ApiKey=abc", "https://h/p?ApiKey=***"),
        ("https://user:pw@h/p", "https://user:***@h/p"),
        ("https://h/p?limit=10", "https://h/p?limit=10"),
    ],
)
def test_redact_url_masks_credential_parameters(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(httpx.URL(url)) == expected


def test_redact_text_replaces_given_and_registered_secrets() -> None:
    register_secret("registered-secret-value")
    text = "key=given-secret-value and registered-secret-value, see https://h/?token=zzz"
    scrubbed = redact_text(text, ["given-secret-value"])
    assert "given-secret-value" not in scrubbed
    assert "registered-secret-value" not in scrubbed
    assert "zzz" not in scrubbed
    assert scrubbed.count("***") == 3


@pytest.mark.parametrize(
    "text",
    [
        "HTTP Request: GET https://sync:hunter2pass@api.example.test/v1 200",
        "HTTP Request: GET http://sync:hunter2pass@127.0.0.1:8000/api/v2/Gift 200",
        "cannot reach postgres://sync:hunter2pass@db.example.org/state: refused",
        "failed: https://hunter2pass@api.example.test/x",
    ],
)
def test_redact_text_masks_a_password_in_a_urls_userinfo(text: str) -> None:
    # httpx logs each request's URL whole: userinfo is a password no registry knows.
    scrubbed = redact_text(text)
    assert "hunter2pass" not in scrubbed
    assert "***@" in scrubbed


def test_redact_text_leaves_email_addresses_alone() -> None:
    text = "contact ada@example.org, see https://example.org/a@b"
    assert redact_text(text) == text


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    register_secret("")
    register_secret(None)
    assert redact_text("abc") == "abc"


def test_secret_filter_scrubs_messages_arguments_and_tracebacks() -> None:
    register_secret(FAKE_KEY)
    logger = logging.getLogger("tests.redact.filter")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(SecretFilter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("using %s", FAKE_KEY)
        try:
            raise ValueError(f"bad key {FAKE_KEY}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    formatted = [logging.Formatter().format(record) for record in records]
    assert len(formatted) == 2
    assert all(FAKE_KEY not in text for text in formatted)
    assert "using ***" in formatted[0]
    assert "bad key ***" in formatted[1]


def test_no_secret_in_logs_or_errors_end_to_end(caplog: pytest.LogCaptureFixture) -> None:
    """A key sent as a header and as a query parameter, echoed back by a hostile server in every
    kind of error, never shows up in a log line or an exception message."""
    caplog.set_level(logging.DEBUG)
    service = Service(
        "Fake", "https://api.example.test", retry=RetryPolicy(attempts=2, base_delay=0)
    )
    echo = f'{{"message": "key {FAKE_KEY} is bad"}}'
    cases: list[tuple[httpx.Response | Exception, type[ConnectorError]]] = [
        (httpx.Response(400, content=echo), InvalidRecord),
        (httpx.Response(401, content=echo), AuthError),
        (httpx.Response(403, content=echo), AuthError),
        (httpx.Response(503, content=echo), RetriableError),
        (httpx.ConnectError(f"cannot connect with {FAKE_KEY}"), RetriableError),
    ]
    errors: list[ConnectorError] = []
    for auth in (BearerToken(FAKE_KEY), QueryKey("api_key", FAKE_KEY)):
        for reply, expected in cases:
            server = FakeServer(reply)
            with (
                build_client(service, auth, transport=server.transport()) as client,
                pytest.raises(expected) as caught,
            ):
                raise_for_status(client.get("/things", params={"page": 1}), service)
            errors.append(caught.value)
    assert len(errors) == 10
    for error in errors:
        assert FAKE_KEY not in str(error)
        assert "Authorization" not in str(error)
    lines = [record.getMessage() for record in caplog.records] + [caplog.text]
    assert any("api.example.test" in line for line in lines)  # the requests were logged...
    assert all(FAKE_KEY not in line for line in lines)  # ...without the key
    assert all("Bearer" not in line for line in lines)


def test_a_numeric_secret_is_masked_alone_never_inside_a_longer_number() -> None:
    register_secret("000000")  # a two-factor code
    assert redact_text("code 000000 sent") == "code *** sent"
    assert redact_text("USD 10000000000000000.01") == "USD 10000000000000000.01"
