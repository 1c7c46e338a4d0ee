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
        assert store.pair_views("pair-a", ["1"]) == [ada]
        assert store.pair_views("pair-a", links=["hash-g"]) == [grace]
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
