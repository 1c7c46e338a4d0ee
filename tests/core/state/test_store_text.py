"""Whatever text a source's keys and a refusal's reason hold comes back from the state store as
it was given, on every backend (PostgreSQL text cannot hold NUL: the store escapes it)."""

from __future__ import annotations

from core.outcomes import Outcome
from core.state import Batch, DeadLetter, InFlight, open_state

KEYS = ["plain", "nul\x00inside", "\x00", "\uffff", "\uffff0", "\\0", "both\uffff\x00\uffff"]


def test_keys_and_reasons_with_nul_and_escapes_come_back_as_given(state_location: str) -> None:
    store = open_state(state_location)
    try:
        store.mark_in_flight(
            "r", [InFlight(key, "a" * 64, f"ref{key}", {"k": key}, {"k": key}) for key in KEYS]
        )
        assert {i.key: i.sink_ref for i in store.in_flight("r")} == {k: f"ref{k}" for k in KEYS}
        store.commit(
            "r",
            Batch(
                ledger=[(key, "b" * 64, f"sink{key}", Outcome.WRITTEN) for key in KEYS],
                dead_letters=[
                    DeadLetter(key, Outcome.INVALID, f"bad {key}", f"f{key}", {"k": key})
                    for key in KEYS
                ],
                settled=list(KEYS),
            ),
        )
        assert store.in_flight("r") == []
        found = store.ledger("r", [*KEYS, "absent"])
        assert {key: entry.sink_key for key, entry in found.items()} == {
            key: f"sink{key}" for key in KEYS
        }
        letters = {d.key: (d.reason, d.field, d.record) for d in store.dead_letters("r")}
        assert letters == {key: (f"bad {key}", f"f{key}", {"k": key}) for key in KEYS}
        store.commit("r", Batch(resolved=list(KEYS)))
        assert store.dead_letters("r") == []
    finally:
        store.close()
