"""The Redis budget store: chosen by CONNECTOR_RATE_URL whatever the state store, one line
naming the server (never its password) when it cannot be used. Its arithmetic is tested with
every other store's in test_governor.py and test_server_window.py."""

from __future__ import annotations

import pytest

from core.errors import FatalError, RecipeError
from core.http import store_for
from core.http.redis_store import RedisBudgetStore, display
from tests.redis_server import redis_or_skip


class _State:
    def __init__(self, location: str) -> None:
        self.location = location


def test_the_rate_url_wins_over_the_state_store(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CONNECTOR_RATE_URL", redis_or_skip())
    for location in (str(tmp_path / "state.db"), "postgresql://db/state", ":memory:"):
        assert isinstance(store_for(_State(location)), RedisBudgetStore)


def test_a_rate_url_that_is_no_redis_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_RATE_URL", "postgresql://user:hunter2@db/state")
    with pytest.raises(RecipeError) as raised:
        store_for(_State(":memory:"))
    assert str(raised.value) == (
        "CONNECTOR_RATE_URL must be a Redis URL (redis://..., rediss://..., unix://...),"
        " not 'postgresql://user@db/state'"
    )


def test_an_unreachable_redis_is_one_line_without_its_password() -> None:
    store = RedisBudgetStore("redis://:hunter2@127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(FatalError) as raised:
        store.take("k", 5, 60, 1_700_000_000.0)
    message = str(raised.value)
    assert message.startswith("cannot use the rate budget Redis redis://127.0.0.1:1/0: ")
    assert "hunter2" not in message
    assert "\n" not in message


def test_display_hides_the_password_only() -> None:
    assert display("redis://:pw@cache:6380/2") == "redis://cache:6380/2"
    assert display("rediss://app:pw@cache/0") == "rediss://app@cache/0"
    assert display("redis://cache:6379/0") == "redis://cache:6379/0"


def test_reported_names_each_budget_the_server_reported_still_in_its_window(
    redis_budgets,
) -> None:
    store, now = redis_budgets(), 1_700_000_000.0
    store.observe("virtuous:1a2b3c", 4321, now + 600, 5000, now)
    store.observe("stripe:9f8e", 12, now + 1, 100, now)
    assert store.reported(now) == {"virtuous:1a2b3c": 4321, "stripe:9f8e": 12}
    assert store.reported(now + 2) == {"virtuous:1a2b3c": 4321}
