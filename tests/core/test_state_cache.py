"""The state store's cache: JSON values kept for a while, shared by every recipe of the database.

Every test runs against each backend (SQLite, Postgres: ``state_location``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from core.json_numbers import parse_json
from core.state import StateStore, open_state

PROJECTS = [{"id": 1, "code": "GENERAL", "name": "General Fund", "active": True}]


@pytest.fixture
def opened(state_location: str) -> Iterator[Callable[[], StateStore]]:
    """Opens the test's state store, as a new process would; each is closed at the end."""
    stores: list[StateStore] = []

    def open_one() -> StateStore:
        stores.append(open_state(state_location))
        return stores[-1]

    yield open_one
    for store in stores:
        store.close()


def test_a_value_is_kept_until_it_is_older_than_asked(opened: Callable[[], StateStore]) -> None:
    store = opened()
    assert store.cache_get("virtuous.projects", "org-1", 3600) is None
    store.cache_put("virtuous.projects", "org-1", PROJECTS)
    assert store.cache_get("virtuous.projects", "org-1", 3600) == PROJECTS
    time.sleep(0.05)
    assert store.cache_get("virtuous.projects", "org-1", 0.01) is None
    assert store.cache_get("virtuous.projects", "org-1", 0) is None  # 0: never fresh


def test_a_put_replaces_the_value_and_restarts_its_age(opened: Callable[[], StateStore]) -> None:
    store = opened()
    store.cache_put("ns", "k", {"v": 1})
    time.sleep(1.0)
    store.cache_put("ns", "k", {"v": 2})
    # Within 0.9 s of the second put (a loaded machine took over 40 ms); past it for the first.
    assert store.cache_get("ns", "k", 0.9) == {"v": 2}


def test_namespaces_and_keys_are_apart_and_the_cache_outlives_the_process(
    opened: Callable[[], StateStore],
) -> None:
    store = opened()
    store.cache_put("a", "k", [1])
    store.cache_put("b", "k", [2])
    store.cache_put("a", "other", [3])
    again = opened()
    assert [again.cache_get(ns, k, 60) for ns, k in (("a", "k"), ("b", "k"), ("a", "other"))] == [
        [1],
        [2],
        [3],
    ]


def test_exact_numbers_come_back_exact_and_a_recipe_reset_keeps_the_cache(
    opened: Callable[[], StateStore],
) -> None:
    store = opened()
    store.cache_put("ns", "k", parse_json('{"balance": 0.10}'))
    store.reset("some-recipe")
    cached = store.cache_get("ns", "k", 60)
    assert cached == {"balance": Decimal("0.10")}
    assert str(cached["balance"]) == "0.10"
