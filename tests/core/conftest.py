"""Fixtures of the core tests: the state backends every state test runs against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.state.backends import BACKENDS, emptied, session_schema


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[str]:
    """The URL of this session's Postgres schema (skipped, with the reason, when the server is
    not reachable)."""
    with session_schema() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_session: str) -> str:
    """A Postgres state URL whose tables this test finds empty."""
    return emptied(postgres_session)


@pytest.fixture(params=BACKENDS)
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's state lives: a SQLite file in its folder, or Postgres."""
    if request.param == "sqlite":
        return str(tmp_path / ".connector" / "state.db")
    url: str = request.getfixturevalue("postgres_url")
    return url
