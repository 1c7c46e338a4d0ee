"""Draining the inbox: through the recipe's ledger, in order per key, nothing lost or doubled."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable

import pytest

from core.report import RunReport
from core.runner import Incoming
from tests.core.serve.conftest import Bench, recipe_text
from tests.core.serve.signed import event

SWITCHED = "test.switched\n  with: {path: out.jsonl, down_flag: down}"


def test_a_burst_of_1000_shuffled_events_with_20_percent_duplicates_writes_each_record_once(
    bench: Callable[..., Bench],
) -> None:
    served = bench()
    unique = [event(f"g{n}", amount=n, event_id=f"evt_{n}") for n in range(800)]
    # Redelivered as they were (the same event id), or with no id at all, as some services do.
    again = [dict(e) for e in unique[:100]]
    anonymous = [{**e, "id": None} for e in unique[100:200]]
    burst = unique + again + anonymous
    random.Random(11).shuffle(burst)
    for start in range(0, len(burst), 10):
        assert served.post(*burst[start : start + 10]).status_code == 200
    served.drain()
    written = served.out()
    assert len(written) == 800
    assert {line["id"]: line["amount"] for line in written} == {f"g{n}": n for n in range(800)}
    assert served.store.inbox_events("hooks") == []
    assert served.metrics.value("connector_records_total", "hooks", outcome="written") == 800
    assert served.metrics.value("connector_records_total", "hooks", outcome="unchanged") == 100


def test_events_for_one_key_are_written_in_the_order_they_arrived(
    bench: Callable[..., Bench],
) -> None:
    served = bench()
    for amount in (1, 2, 3):
        served.post(event("g1", amount=amount), event(f"other{amount}", amount=0))
    served.drain()
    assert [line["amount"] for line in served.out() if line["id"] == "g1"] == [1, 2, 3]


def test_a_redelivered_event_after_it_was_written_is_unchanged(
    bench: Callable[..., Bench],
) -> None:
    served = bench()
    served.post(event("g1", amount=5))
    served.drain()
    served.post(event("g1", amount=5))
    served.drain()
    assert served.out() == [{"id": "g1", "amount": 5}]


def test_while_the_sink_is_down_events_stay_and_are_retried_with_backoff(
    bench: Callable[..., Bench],
) -> None:
    from core.serve.drain import DrainSettings

    served = bench(recipe_text(sink=SWITCHED), DrainSettings(first_backoff=60))
    down = served.directory / "down"
    down.touch()
    served.post(event("g1", amount=5), event("g2", amount=6))
    assert served.drain() == 1  # then nothing is due: each waits a minute
    waiting = served.store.inbox_events("hooks")
    assert [(e.status, e.attempts) for e in waiting] == [("pending", 1), ("pending", 1)]
    assert all(e.available_at > e.received_at + 50 for e in waiting)
    assert "the sink did not take it" in (waiting[0].last_error or "")
    assert "the test service is down" in (waiting[0].last_error or "")  # why, not just where
    assert served.out() == []
    assert DrainSettings(first_backoff=60).backoff(3) == 240  # longer after each failure
    down.unlink()
    served.store.inbox_retry("hooks")  # what `connector inbox retry` does: due now
    served.drain()
    assert sorted(line["id"] for line in served.out()) == ["g1", "g2"]
    assert served.store.inbox_events("hooks") == []
    assert served.store.dead_letters("hooks") == []  # cleared once they went through


def test_an_event_gives_up_after_its_attempts_until_inbox_retry(
    bench: Callable[..., Bench],
) -> None:
    from core.serve.drain import DrainSettings

    served = bench(recipe_text(sink=SWITCHED), DrainSettings(first_backoff=0, max_attempts=2))
    (served.directory / "down").touch()
    served.post(event("g1", amount=5))
    served.drain()
    [event_] = served.store.inbox_events("hooks")
    assert (event_.status, event_.attempts) == ("failed", 2)
    (served.directory / "down").unlink()
    assert served.drain() == 0
    assert served.store.inbox_retry("hooks") == 1
    served.drain()
    assert served.out() == [{"id": "g1", "amount": 5}]


def test_refetch_reads_the_current_record_and_a_gone_one_is_done_without_a_write(
    bench: Callable[..., Bench],
) -> None:
    text = recipe_text(source_extra=", refetch: true").replace(
        "amount: record.amount", "amount: record.amount\n  refetched: record.refetched"
    )
    served = bench(text)
    served.post(event("g1", amount=5), event("g2", amount=6, gone=True))
    served.drain()
    assert served.out() == [{"id": "g1", "amount": 5, "refetched": True}]
    assert served.store.inbox_events("hooks") == []


def test_an_event_whose_record_is_invalid_is_dead_lettered_and_leaves_the_inbox(
    bench: Callable[..., Bench],
) -> None:
    text = recipe_text().replace("amount: record.amount", "amount: record.amount - 1")
    served = bench(text)
    served.post(event("g1", amount="five"), event("g2", amount=6))
    served.drain()
    assert served.out() == [{"id": "g2", "amount": 5}]
    assert [d.key for d in served.store.dead_letters("hooks")] == ["g1"]
    assert served.store.inbox_events("hooks") == []
    outcomes = Counter(e.status for e in served.store.inbox_events("hooks", ("done",)))
    assert outcomes == {"done": 2}


def test_an_unexpected_error_while_draining_is_logged_and_the_worker_carries_on(
    bench: Callable[..., Bench], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from core.runner import Runner
    from core.serve.drain import DrainSettings

    served = bench(drain=DrainSettings(first_backoff=0, lease_seconds=0, idle_poll=0.05))
    original, calls = Runner.sync, []

    def failing_once(self: Runner, records: Iterable[Incoming]) -> RunReport:
        calls.append(records)
        if len(calls) == 1:
            raise RuntimeError("a bug in the first batch")
        return original(self, records)

    monkeypatch.setattr(Runner, "sync", failing_once)
    served.drainer.start()
    try:
        served.post(event("g1", amount=5))
        deadline = time.monotonic() + 30
        while not served.out() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        served.drainer.stop()
    assert served.out() == [{"id": "g1", "amount": 5}]
    assert "draining the inbox failed" in caplog.text


def test_later_events_of_a_key_wait_behind_a_failing_one_until_it_is_given_up_on(
    bench: Callable[..., Bench],
) -> None:
    from core.serve.drain import DrainSettings

    text = recipe_text(source_extra=", refetch: true")
    served = bench(text, DrainSettings(first_backoff=0, max_attempts=3))
    served.post(event("g1", amount=1, unreachable=True), event("g2", amount=2))
    served.post(event("g1", amount=3))
    served.drainer.drain_once(served.store, served.store)
    assert [line["id"] for line in served.out()] == ["g2"]  # g1's second waits behind its first
    served.drain()
    [failed] = served.store.inbox_events("hooks")
    assert (failed.key, failed.status, failed.attempts) == ("g1", "failed", 3)
    assert "cannot be reached" in (failed.last_error or "")
    assert [(line["id"], line["amount"]) for line in served.out()] == [("g2", 2), ("g1", 3)]


def test_a_batch_that_outlasts_its_lease_keeps_its_claims_renewed(
    bench: Callable[..., Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.serve.drain import Drainer, DrainSettings
    from core.state import inbox_of, open_state

    served = bench(drain=DrainSettings(first_backoff=0, lease_seconds=3))
    renewals: list[tuple[float, int]] = []
    store_class = type(served.store)
    renew = store_class.inbox_renew

    def noted(self: object, seqs: list[int], holder: str, lease: float) -> int:
        renewed = renew(self, seqs, holder, lease)  # type: ignore[arg-type]
        renewals.append((lease, renewed))
        return renewed

    process = Drainer._process

    def slow(self: Drainer, store: object, inbox: object, events: list[object]) -> None:
        claimed_until = time.monotonic() + 3  # no sooner than the claim runs out unrenewed
        deadline = time.monotonic() + 30
        while not renewals and time.monotonic() < deadline:
            time.sleep(0.02)
        assert renewals
        assert renewals[0][1] == 1
        time.sleep(max(claimed_until - time.monotonic(), 0))
        other = open_state(served.location)
        try:  # another server, once the first lease has run out, takes nothing
            stolen = inbox_of(other).inbox_claim("hooks", 10, 30, holder="another")
        finally:
            other.close()
        assert stolen == []
        process(self, store, inbox, events)  # type: ignore[arg-type]

    monkeypatch.setattr(store_class, "inbox_renew", noted)
    monkeypatch.setattr(Drainer, "_process", slow)
    served.post(event("g1", amount=1))
    served.drain()
    assert served.out() == [{"id": "g1", "amount": 1}]
    assert served.store.inbox_events("hooks") == []
