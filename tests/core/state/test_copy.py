"""``copy_state``: a recipe's state moved between SQLite and Postgres (and Postgres to Postgres)
reads back exactly as it was, through the store and row by row, and a copy that would lose what
a run knew, or overwrite state, is refused with nothing copied."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import RecipeError
from core.outcomes import Outcome
from core.state import Batch, DeadLetter, InFlight, NewEvent, PairView, StateStore, open_state
from core.state.copy import TABLES, Named, copy_state
from tests.core.state.backends import postgres_or_skip, postgres_schema

RECIPE = Named("gifts", "gifts.yaml")
# Keys as a source may give them: NUL (which Postgres text cannot hold) and U+FFFF (its escape).
ODD_KEY, ESCAPE_KEY = "g-\x00-nul", "g-\uffff-ffff"


def _seed(location: str | Path, recipe: str = RECIPE.name) -> None:
    """Some of everything a recipe keeps, as runs, servers and workers leave it."""
    store = open_state(location)
    try:
        ledger = [
            ("g-1", "a" * 64, "tx-1", Outcome.WRITTEN),
            (ODD_KEY, "b" * 64, None, Outcome.UNCHANGED),
            (ESCAPE_KEY, "not a sha256 digest", "tx-\x00", Outcome.UPDATED),
        ]
        refused = DeadLetter("g-9", Outcome.INVALID, "giftDate: no\x00such day", "giftDate", {})
        left = DeadLetter("g-8", Outcome.NEEDS_REVIEW, "partial refund", None, {"amount": "1.10"})
        views = [PairView("c-1", {"firstName": "Zoë"}, "2025-01-01T00:00:00+00:00", "h-1")]
        batch = Batch(ledger=ledger, dead_letters=[refused, left], views=views)
        batch.cursor, batch.sink_checkpoint = {"since": "2025-03-01"}, {"file": 3}
        store.commit(recipe, batch)
        store.record_run(recipe, {"started_at": "2025-03-01T00:00:00+00:00", "outcomes": {}})
        store.record_run(recipe, {"started_at": "2025-03-02T00:00:00+00:00", "ok": True})
        store.cache_put("worker.schedule", recipe, {"due": 1.5, "finished_at": 2.25})
        store.cache_put("virtuous.designations", "shared", ["General"])  # nobody's: stays
        _inbox(store, recipe)
    finally:
        store.close()


def _inbox(store: StateStore, recipe: str) -> None:
    inbox: Any = store
    events = [NewEvent(recipe, "GiftCreate", f"g-{n}", {"n": n}, f"e-{n}") for n in (1, 2, 3)]
    inbox.inbox_enqueue(events)
    [first, *_] = inbox.inbox_events(recipe)
    inbox.inbox_failed([(first.seq, "refused")], lambda attempts: 60.0, 1)
    [_, second, _] = inbox.inbox_events(recipe, ("pending", "failed"))
    inbox.inbox_done([second.seq])


def _seen(location: str | Path, recipe: str = RECIPE.name) -> dict[str, Any]:
    """What the store tells of ``recipe``: everything a run, a server or a command reads."""
    store = open_state(location)
    inbox: Any = store
    try:
        keys = [e.key for e in store.ledger_entries(recipe)]
        return {
            "cursor": (store.cursor(recipe), store.sink_checkpoint(recipe)),
            # Sorted here: Postgres orders the escaped text of a key with NUL elsewhere.
            "ledger": sorted(store.ledger_entries(recipe), key=lambda e: e.key),
            "found": store.ledger(recipe, keys),
            "dead letters": store.dead_letters(recipe),
            "in flight": store.in_flight(recipe),
            "views": store.pair_views(recipe, ["c-1"], ["h-1"]),
            "runs": store.runs(recipe),
            "schedule": store.cache_get("worker.schedule", recipe, float("inf")),
            "inbox": [
                {**vars(e), "seq": None}  # numbered anew after the target's own events
                for e in inbox.inbox_events(recipe, ("pending", "failed", "done"))
            ],
        }
    finally:
        store.close()


def _rows(path: Path, recipe: str = RECIPE.name) -> dict[str, list[tuple[Any, ...]]]:
    """Every row ``recipe`` owns in every table of a SQLite file, read with SQL of the test's
    own, but the numbers a copy gives anew (the recipe's in ``recipes``, the inbox's ``seq``)."""
    db = sqlite3.connect(path)
    number = f"(SELECT id FROM recipes WHERE name = '{recipe}')"
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        found = {}
        for table in sorted(set(tables) - {"recipes", "sqlite_sequence", "state_schema"}):
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            owner = "key" if table == "cache" else "recipe"
            value = number if table in {"ledger", "pair_views"} else f"'{recipe}'"
            kept = ", ".join(c for c in columns if c not in {"seq", owner})
            query = f"SELECT {kept} FROM {table} WHERE {owner} = {value}"
            found[table] = sorted(db.execute(query).fetchall(), key=repr)
        return found
    finally:
        db.close()


@pytest.fixture
def second_postgres() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_sqlite_to_postgres_and_back_reads_back_row_for_row(tmp_path, postgres_url) -> None:
    original = tmp_path / "one" / "state.db"
    _seed(original)
    _seed(original, "other")  # another recipe's state stays where it is
    [copied] = copy_state([RECIPE], original, postgres_url)
    assert copied.rows == {
        "cursor": 1,
        "ledger": 3,
        "dead letters": 2,
        "in flight": 0,
        "two-way views": 1,
        "inbox events": 3,
        "run reports": 2,
        "worker schedule": 1,
    }
    assert _seen(postgres_url) == _seen(original)
    assert _seen(postgres_url, "other")["ledger"] == []

    back = tmp_path / "back" / "state.db"
    _seed(back, "other")
    copy_state([RECIPE], postgres_url, back)
    assert _seen(back) == _seen(original)
    assert _rows(back) == _rows(original)
    # Every table holds some of it, so each was compared (but in-flight marks: none are copied).
    assert [t for t, rows in _rows(original).items() if not rows] == ["in_flight"]


def test_postgres_to_postgres_reads_back_as_it_was(postgres_url, second_postgres) -> None:
    _seed(postgres_url)
    copy_state([RECIPE], postgres_url, second_postgres)
    assert _seen(second_postgres) == _seen(postgres_url)


def test_the_copy_knows_every_column_of_every_table(tmp_path, postgres_url) -> None:
    """A column added to a state table must be copied, or the copy would not be exact."""
    open_state(tmp_path / "state.db").close()
    db = sqlite3.connect(tmp_path / "state.db")
    sqlite_tables = {
        t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")}
        for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    db.close()
    admin, schema = postgres_or_skip(), postgres_url.rsplit("%3D", 1)[1]
    postgres_tables: dict[str, set[str]] = {}
    for table, column in admin.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        (schema,),
    ).fetchall():
        postgres_tables.setdefault(table, set()).add(column)
    # Nobody's, or this database's alone (a recipe's number, an event's place in the queue).
    left = {"recipes", "state_schema", "sqlite_sequence", "leases"}
    left |= {"http_budget", "http_budget_log", "http_tokens"}
    copied = {t.name: {t.owner, *t.columns} for t in TABLES}
    for tables in (sqlite_tables, postgres_tables):
        kept = {t: columns - {"seq"} for t, columns in tables.items() if t not in left}
        assert kept == {t: copied[t] if t != "cache" else copied[t] | {"key"} for t in kept}


def _refused(source: str | Path, target: str | Path, *words: str, **options: Any) -> str:
    with pytest.raises(RecipeError) as refusal:
        copy_state([RECIPE], source, target, **options)
    message = str(refusal.value)
    for word in words:
        assert word in message
    assert "nothing" in message
    return message


def test_a_target_holding_the_recipe_is_refused_unless_replaced(tmp_path, postgres_url) -> None:
    source = tmp_path / "state.db"
    _seed(source)
    store = open_state(postgres_url)
    store.commit(RECIPE.name, Batch(ledger=[("only-there", "c" * 64, None, Outcome.WRITTEN)]))
    store.close()
    message = _refused(source, postgres_url, "gifts", "ledger 1", "connector state show gifts.yaml")
    assert "<the --to URL>" in message  # a URL, which may hold a password, is never repeated
    assert [e.key for e in _seen(postgres_url)["ledger"]] == ["only-there"]

    copy_state([RECIPE], source, postgres_url, replace=True)
    assert _seen(postgres_url) == _seen(source)


def test_records_in_flight_are_refused_until_a_run_settles_them(tmp_path, postgres_url) -> None:
    source = tmp_path / "state.db"
    _seed(source)
    store = open_state(source)
    store.mark_in_flight(RECIPE.name, [InFlight("g-5", "d" * 64, None, {}, {})])
    store.close()
    _refused(source, postgres_url, "gifts", "in flight", f"--state {source}")
    assert _seen(postgres_url)["ledger"] == []


def test_a_run_going_at_either_end_is_refused(tmp_path, postgres_url) -> None:
    source = tmp_path / "state.db"
    _seed(source)
    for running in (source, postgres_url):
        store = open_state(running)
        try:
            with store.lock(RECIPE.name):
                _refused(source, postgres_url, "gifts", "a run of it is going")
        finally:
            store.close()
    assert _seen(postgres_url)["ledger"] == []


def test_events_a_server_holds_are_refused(tmp_path, postgres_url) -> None:
    source = tmp_path / "state.db"
    _seed(source)
    store: Any = open_state(source)
    store.inbox_claim(RECIPE.name, 10, 300.0, "server-1")
    store.close()
    _refused(source, postgres_url, "gifts", "a server holds 1")


def test_a_newer_schema_says_what_to_upgrade(tmp_path, postgres_url) -> None:
    source, target = tmp_path / "state.db", tmp_path / "newer" / "state.db"
    _seed(source)
    open_state(target).close()
    with sqlite3.connect(target) as db:
        db.execute("UPDATE state_schema SET version = version + 1")
    db.close()
    _refused(source, target, "--to", "newer than this connector knows", "upgrade connector")


def test_an_empty_source_or_the_same_database_is_refused(tmp_path, postgres_url) -> None:
    _refused(tmp_path / "empty.db", postgres_url, "holds no state of gifts", "is --from right")
    _refused(postgres_url, postgres_url, "the same state database")


def test_replace_never_forgets_records_in_flight_at_the_target(tmp_path, postgres_url) -> None:
    source = tmp_path / "state.db"
    _seed(source)
    store = open_state(postgres_url)
    store.mark_in_flight(RECIPE.name, [InFlight("g-7", "e" * 64, "tx-7", {}, {})])
    store.close()
    _refused(source, postgres_url, "in flight", "<the --to URL>", replace=True)
    assert [i.key for i in _seen(postgres_url)["in flight"]] == ["g-7"]
