"""Fixtures of the HTTP tests: the budget stores every governor test runs against."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.http import BudgetStore, MemoryBudgetStore, SqliteBudgetStore
from tests.core.state.backends import budgets_opener


@pytest.fixture(params=["memory", "postgres"])
def budget_store(request: pytest.FixtureRequest) -> BudgetStore:
    """A budget store of this process (memory), or of a Postgres state database."""
    if request.param == "memory":
        return MemoryBudgetStore()
    opened: BudgetStore = budgets_opener(request.getfixturevalue("postgres_url"))()
    return opened


@pytest.fixture(params=["sqlite", "postgres"])
def shared_budgets(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], BudgetStore]:
    """Opens another store on one shared database each call, as another process would."""
    if request.param == "sqlite":
        return lambda: SqliteBudgetStore(tmp_path / "state.db")
    opener: Callable[[], BudgetStore] = budgets_opener(request.getfixturevalue("postgres_url"))
    return opener
