"""Each run's report, kept by the state store for `connector report`, on every backend."""

from __future__ import annotations

from core.state import open_state


def test_run_reports_come_back_per_recipe_oldest_first(state_location: str) -> None:
    store = open_state(state_location)
    try:
        later = {"started_at": "2026-01-02T00:00:00+00:00", "outcomes": {"written": 2}}
        earlier = {"started_at": "2026-01-01T00:00:00+00:00", "problems": [{"reason": "a\x00b"}]}
        store.record_run("gifts", later)
        store.record_run("gifts", earlier)
        store.record_run("contacts", {"started_at": "2026-01-03T00:00:00+00:00"})
        assert store.runs("gifts") == [earlier, later]
        assert len(store.runs("contacts")) == 1
        assert store.runs("nothing") == []
    finally:
        store.close()
