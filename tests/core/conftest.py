"""Fixtures of the core tests: the state backends every state test runs against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.state.backends import BACKENDS, postgres_schema


@pytest.fixture(params=BACKENDS)
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a test's state lives: a SQLite file in its folder, or a Postgres schema of its own
    (skipped, with the reason, when the server is not reachable)."""
    if request.param == "sqlite":
        yield str(tmp_path / ".connector" / "state.db")
        return
    with postgres_schema() as url:
        yield url
