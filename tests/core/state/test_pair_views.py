"""What a two-way recipe remembers of the records it read (``pair_views``), on every backend:
found by key or by link, committed with a batch, kept linked when a later view knows no link,
and gone with the recipe's state."""

from __future__ import annotations

from core.outcomes import Outcome
from core.state import Batch, PairView, open_state


def test_views_are_found_by_key_or_link_and_reset_with_the_recipe(state_location: str) -> None:
    store = open_state(state_location)
    try:
        assert store.pair_views("pair-a", ["1"], ["x"]) == []
        ada = PairView("1", {"firstName": "Ada", "tags.Donor": True}, "2025-01-01T00:00:00+00:00")
        grace = PairView("2", {"firstName": "Grace"}, None, "hash-g")
        written = [("1", "a" * 64, "hash-a", Outcome.ECHO)]
        store.commit("pair-a", Batch(ledger=written, views=[ada, grace]))
        [found] = store.pair_views("pair-a", ["1"])
        assert (found.fields, found.modified, found.link) == (ada.fields, ada.modified, None)
        assert found.seen_at == store.ledger("pair-a", ["1"])["1"].updated_at  # same commit
        assert [v.fields for v in store.pair_views("pair-a", links=["hash-g"])] == [grace.fields]
        assert store.pair_views("pair-b", ["1"], ["hash-g"]) == []
        assert store.ledger("pair-a", ["1"])["1"].outcome is Outcome.ECHO

        renamed = PairView("2", {"firstName": "Amazing Grace"}, "2025-02-01T00:00:00+00:00")
        store.commit("pair-a", Batch(views=[renamed]))
        [again] = store.pair_views("pair-a", ["2"])
        assert (again.fields, again.link) == (renamed.fields, "hash-g")  # its link stays

        store.reset("pair-a")
        assert store.pair_views("pair-a", ["1", "2"]) == []
    finally:
        store.close()


def test_views_of_a_version_4_file_are_kept_and_gain_their_time(tmp_path) -> None:
    import sqlite3

    from core.state import SqliteStateStore
    from core.state.schema import VERSION

    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    store.commit("pair-a", Batch(views=[PairView("1", {"firstName": "Ada"})]))
    store.close()
    with sqlite3.connect(path) as db:  # as version 4 left it: views without their time
        db.execute("ALTER TABLE pair_views DROP COLUMN seen_at")
        db.execute("UPDATE state_schema SET version = 4")
    store = SqliteStateStore(path)
    try:
        [view] = store.pair_views("pair-a", ["1"])
        assert (view.fields, view.seen_at) == ({"firstName": "Ada"}, "1970-01-01T00:00:00+00:00")
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM state_schema").fetchall() == [(VERSION,)]
