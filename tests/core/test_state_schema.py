"""The state database's versioned schema: a file of the first version keeps its meaning."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import FatalError
from core.outcomes import Outcome
from core.recipe import load_recipe
from core.registry import Registry
from core.runner import Runner
from core.state import Batch, DeadLetter, SqliteStateStore
from core.state.schema import VERSION
from tests.conftest import read_jsonl, write_jsonl

RECIPE = """
version: 1
name: gifts
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  id: record.id
  amount: record.cents | minor_to_major(record.currency)
  currency: record.currency | upper
  email: record.email | lower
  note: record.note
sink:
  use: file.jsonl
  with: {path: out.jsonl, batch_size: 3}
"""

# The state file as version 1 made it (before the schema version was recorded).
V1_SCHEMA = """
CREATE TABLE recipe_state (recipe TEXT PRIMARY KEY, cursor TEXT, sink_checkpoint TEXT,
    updated_at TEXT NOT NULL);
CREATE TABLE ledger (recipe TEXT NOT NULL, source_key TEXT NOT NULL, payload_hash TEXT NOT NULL,
    sink_key TEXT, outcome TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (recipe, source_key));
CREATE TABLE dead_letters (recipe TEXT NOT NULL, source_key TEXT NOT NULL, outcome TEXT NOT NULL,
    reason TEXT NOT NULL, field TEXT, record TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL, PRIMARY KEY (recipe, source_key));
CREATE TABLE in_flight (recipe TEXT NOT NULL, source_key TEXT NOT NULL,
    payload_hash TEXT NOT NULL, sink_ref TEXT, payload TEXT NOT NULL, record TEXT NOT NULL,
    since TEXT NOT NULL, PRIMARY KEY (recipe, source_key));
CREATE TABLE cache (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    stored_at REAL NOT NULL, PRIMARY KEY (namespace, key));
"""

RECORDS: list[dict[str, Any]] = [
    {"id": f"d{i}", "cents": 1000 + i, "currency": c, "email": f"D{i}@X.ORG", "note": note}
    for i, (c, note) in enumerate(
        [("usd", "plain"), ("jpy", "yen"), ("kwd", "three places"), ("usd", "café ☕"),
         ("usd", None), ("eur", "x" * 300), ("usd", "\u00e9\u0301"), ("usd", "")],
        start=1,
    )
]  # fmt: skip


def old_digest(payload: Any) -> str:
    """How version 1 hashed a payload, written out here so that no code of ours is trusted."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def version_1_file(path: Path, recipe: Any) -> None:
    """A state file as version 1 left it after writing every record of RECORDS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
        db.executemany(
            "INSERT INTO ledger VALUES ('gifts', ?, ?, ?, 'written', '2026-01-02T03:04:05+00:00')",
            [(r["id"], old_digest(recipe.apply(r)), f"line/{n}") for n, r in enumerate(RECORDS)],
        )
        db.execute(
            "INSERT INTO dead_letters VALUES ('gifts', 'gone', 'invalid', 'a reason', 'amount',"
            " '{\"id\": \"gone\"}', 2, '2026-01-02T03:04:05+00:00')"
        )
        db.execute("INSERT INTO recipe_state VALUES ('gifts', NULL, '{\"size\": 0}', '2026-01-02')")


@pytest.fixture
def gifts(tmp_path: Path, write_recipe: Callable[..., Path], registry: Registry) -> Any:
    write_jsonl(tmp_path / "in.jsonl", RECORDS)
    return load_recipe(write_recipe(RECIPE), registry)


def test_a_version_1_ledger_is_migrated_and_every_record_stays_unchanged(
    tmp_path: Path, gifts: Any
) -> None:
    database = tmp_path / ".connector" / "state.db"
    version_1_file(database, gifts)
    (tmp_path / "out.jsonl").write_text("", encoding="utf-8")

    store = SqliteStateStore(database)
    try:
        report = Runner(gifts, store).run()
        entries = {e.key: e for e in store.ledger_entries("gifts")}
        letters = store.dead_letters("gifts")
    finally:
        store.close()

    assert report.counts.get(Outcome.UNCHANGED) == len(RECORDS)
    assert not report.counts.get(Outcome.UPDATED)
    assert not report.counts.get(Outcome.WRITTEN)
    assert not report.counts.get(Outcome.NEEDS_REVIEW)
    assert read_jsonl(tmp_path / "out.jsonl") == []  # nothing written again
    # Every row keeps what it said: digest, the sink's id, outcome and time.
    first = entries["d1"]
    assert first.payload_hash == old_digest(gifts.apply(RECORDS[0]))
    assert (first.sink_key, first.outcome) == ("line/0", Outcome.WRITTEN)
    assert first.updated_at == "2026-01-02T03:04:05+00:00"
    assert [(d.key, d.attempts, d.digest) for d in letters] == [("gone", 2, None)]
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version FROM state_schema").fetchall() == [(VERSION,)]


def test_a_changed_record_after_the_migration_is_an_update(tmp_path: Path, gifts: Any) -> None:
    database = tmp_path / ".connector" / "state.db"
    version_1_file(database, gifts)
    write_jsonl(tmp_path / "in.jsonl", [{**RECORDS[0], "cents": 5}, *RECORDS[1:]])
    (tmp_path / "out.jsonl").write_text("", encoding="utf-8")

    store = SqliteStateStore(database)
    try:
        report = Runner(gifts, store).run()
    finally:
        store.close()

    assert report.counts.get(Outcome.UPDATED) == 1
    assert report.counts.get(Outcome.UNCHANGED) == len(RECORDS) - 1
    assert [line["id"] for line in read_jsonl(tmp_path / "out.jsonl")] == ["d1"]


def test_a_file_of_a_newer_version_is_refused_with_a_clear_stop(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    SqliteStateStore(database).close()
    with sqlite3.connect(database) as db:
        db.execute("UPDATE state_schema SET version = ?", (VERSION + 1,))

    with pytest.raises(FatalError, match="newer than this connector knows"):
        SqliteStateStore(database)


def test_a_reopened_file_keeps_its_ledger(tmp_path: Path) -> None:
    digest = "ab" * 32
    store = SqliteStateStore(tmp_path / "state.db")
    store.commit(
        "r",
        Batch(
            ledger=[("k", digest, "id-1", Outcome.WRITTEN), ("j", "other", None, Outcome.UPDATED)]
        ),
    )
    store.close()

    store = SqliteStateStore(tmp_path / "state.db")
    try:
        found = store.ledger("r", ["k", "j", "missing"])
        assert store.ledger("another recipe", ["k"]) == {}
    finally:
        store.close()
    assert (found["k"].payload_hash, found["k"].sink_key) == (digest, "id-1")
    assert (found["j"].payload_hash, found["j"].outcome) == ("other", Outcome.UPDATED)
    assert set(found) == {"k", "j"}


def test_a_batch_without_dead_letters_deletes_none_record_by_record(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # noqa: SLF001 - what SQLite is asked
    try:
        store.commit("r", Batch(resolved=[f"k{i}" for i in range(500)]))
        assert not [s for s in statements if s.startswith("DELETE FROM dead_letters")]

        letter = DeadLetter("k7", Outcome.INVALID, "bad", None, {"id": "k7"})
        store.commit("r", Batch(dead_letters=[letter]))
        store.commit("r", Batch(resolved=["k7"]))  # fixed: its dead letter goes
        assert store.dead_letters("r") == []
    finally:
        store.close()
