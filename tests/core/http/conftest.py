"""Fixtures of the HTTP tests: the budget stores every governor test runs against."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.http import BudgetStore, MemoryBudgetStore, SqliteBudgetStore
from tests.core.state.backends import budgets_opener
from tests.redis_server import SERVER, redis_prefix


@pytest.fixture
def redis_budgets() -> Iterator[Callable[[], BudgetStore]]:
    """Opens another Redis budget store each call (its own connections), under this test's own
    key prefix (skipped, with the reason, when Redis is unreachable)."""
    from core.http.redis_store import RedisBudgetStore

    with redis_prefix() as prefix:
        yield lambda: RedisBudgetStore(SERVER, prefix=prefix)


@pytest.fixture(params=["memory", "postgres", "redis"])
def budget_store(request: pytest.FixtureRequest) -> BudgetStore:
    """A budget store of this process (memory), of a Postgres state database, or in Redis."""
    if request.param == "memory":
        return MemoryBudgetStore()
    if request.param == "redis":
        opened_redis: BudgetStore = request.getfixturevalue("redis_budgets")()
        return opened_redis
    opened: BudgetStore = budgets_opener(request.getfixturevalue("postgres_url"))()
    return opened


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_budgets(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], BudgetStore]:
    """Opens another store on one shared database each call, as another process would."""
    if request.param == "sqlite":
        return lambda: SqliteBudgetStore(tmp_path / "state.db")
    if request.param == "redis":
        redis_opener: Callable[[], BudgetStore] = request.getfixturevalue("redis_budgets")
        return redis_opener
    opener: Callable[[], BudgetStore] = budgets_opener(request.getfixturevalue("postgres_url"))
    return opener
