"""Fixtures for the Virtuous connector's tests: the emulator, with recipes pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.virtuous.support import Virtuous, serving


@pytest.fixture(params=["lenient", "strict"])
def transaction_validation(request: pytest.FixtureRequest) -> str:
    """How the emulator judges a gift transaction at POST: "lenient" as Virtuous documents
    (accepted, then set aside by the import with the reason), "strict" as we once inferred
    (refused at POST). Where the real behaviour is unsure, the tests run both."""
    return str(request.param)


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch, transaction_validation: str) -> Iterator[Virtuous]:
    """A Virtuous emulator with default settings, in each validation mode; ${VIRTUOUS_BASE_URL}
    and ${VIRTUOUS_API_KEY} point at it for the test."""
    with serving(monkeypatch, transaction_validation=transaction_validation) as emulator:
        yield emulator
