"""Hostile input never ends in a traceback or a hang: the standing suite of issue 9.

Whatever a file, a recipe or an expression holds, the outcome is one of the project's own: a dead
letter naming the record and the cause, or exit 2 (the recipe) or 3 (the run) with one line. Each
property runs a fixed number of seeded, derandomized examples, each inside a time bound, so a
failure reproduces exactly: ``.venv/bin/pytest -q tests/core/test_hostile_input.py``.
"""

from __future__ import annotations

from pathlib import Path

from core.json_numbers import JsonNumber
from core.outcomes import Outcome
from core.state import Batch, DeadLetter, open_state

# --- the state store ---------------------------------------------------------------------------


def test_a_dead_letter_holding_any_text_is_committed_and_read_back_unchanged(
    tmp_path: Path,
) -> None:
    # A lone surrogate is valid in JSON text but not in UTF-8: SQLite refused the whole commit.
    record = {"id": "g2", "note": "\udc80 Zoë 🎁", "\ud800": [JsonNumber("1.50")]}
    store = open_state(tmp_path / "state.db")
    try:
        letter = DeadLetter("g2", Outcome.INVALID, "x: not a number", "x", record)
        store.commit("hostile", Batch(dead_letters=[letter]))
        (read,) = store.dead_letters("hostile")
    finally:
        store.close()
    assert read.record == record
    assert str(read.record["\ud800"][0]) == "1.50"
