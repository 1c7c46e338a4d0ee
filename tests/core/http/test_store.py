"""The SQLite files behind rate budgets and tokens: owner-only, and a clear stop when another
process holds them longer than the busy timeout."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from core.errors import FatalError, RecipeError
from core.http import SqliteBudgetStore, SqliteTokenStore


def test_a_budget_held_by_another_process_stops_naming_the_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "state.db"
    store = SqliteBudgetStore(path)
    monkeypatch.setenv("CONNECTOR_STATE_BUSY_TIMEOUT", "0.2")
    waiting = SqliteBudgetStore(path)  # a process started while the other holds the file
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(FatalError) as stopped:
            waiting.take("virtuous:abc", 10, 60.0, 1000.0)
    finally:
        holder.close()
    message = str(stopped.value)
    assert f"the state database {path} is locked by another process (waited 0.2 s)" in message
    assert "CONNECTOR_STATE_BUSY_TIMEOUT" in message
    assert store.take("virtuous:abc", 10, 60.0, 1000.0) == 0.0  # free again: it goes on


def test_a_busy_timeout_that_is_no_number_is_a_usage_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONNECTOR_STATE_BUSY_TIMEOUT", "soon")
    with pytest.raises(RecipeError, match="CONNECTOR_STATE_BUSY_TIMEOUT must be a number"):
        SqliteBudgetStore(tmp_path / "state.db")


def test_a_token_file_is_owner_only_under_a_permissive_umask(tmp_path) -> None:
    previous = os.umask(0)
    try:
        store = SqliteTokenStore(tmp_path / "new" / "state.db")
        store.save("crm:ada", {"access_token": "a" * 20})
    finally:
        os.umask(previous)
    made = [p for p in (tmp_path / "new").iterdir()]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) & 0o077 for p in made} == {
        p.name: 0 for p in made
    }
    assert "state.db" in {p.name for p in made}
