"""Fixtures for the Virtuous connector's tests: the emulator, with recipes pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.virtuous.support import Virtuous, serving


@pytest.fixture
def virtuous(monkeypatch: pytest.MonkeyPatch) -> Iterator[Virtuous]:
    """A Virtuous emulator with default settings; ${VIRTUOUS_BASE_URL} and ${VIRTUOUS_API_KEY}
    point at it for the test."""
    with serving(monkeypatch) as emulator:
        yield emulator
