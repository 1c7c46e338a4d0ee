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


def test_only_the_newest_runs_are_kept(state_location: str, monkeypatch) -> None:
    for module in ("core.state.sqlite", "core.state.postgres"):
        monkeypatch.setattr(f"{module}.RUNS_KEPT", 2)
    store = open_state(state_location)
    try:
        for day in (1, 2, 3):
            store.record_run("gifts", {"started_at": f"2026-01-0{day}T00:00:00+00:00"})
        store.record_run("other", {"started_at": "2026-01-01T00:00:00+00:00"})
        kept = [run["started_at"][:10] for run in store.runs("gifts")]
        assert kept == ["2026-01-02", "2026-01-03"]
        assert len(store.runs("other")) == 1
    finally:
        store.close()
