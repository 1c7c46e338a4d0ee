"""Fixtures of the HTTP tests: the budget stores every governor test runs against."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.http import BudgetStore, MemoryBudgetStore, SqliteBudgetStore
from tests.core.state.backends import postgres_budgets


@pytest.fixture(params=["memory", "postgres"])
def budget_store(request: pytest.FixtureRequest) -> Iterator[BudgetStore]:
    """A budget store of this process (memory) or of a Postgres schema of the test's own."""
    if request.param == "memory":
        yield MemoryBudgetStore()
        return
    with postgres_budgets() as open_store:
        yield open_store()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_budgets(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], BudgetStore]]:
    """Opens another store on one shared database each call, as another process would."""
    if request.param == "sqlite":
        yield lambda: SqliteBudgetStore(tmp_path / "state.db")
        return
    with postgres_budgets() as open_store:
        yield open_store
