"""The webhook inbox drained by many workers at once, on each backend: every event claimed by one
worker only, each key's events processed in the order they arrived, nothing left behind; and
on Postgres, shared by machines whose clocks differ, by the database's clock."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from core.state import NewEvent, inbox_of, open_state
from tests.core.state.backends import time_passes

HOUR = 3600.0


def _events(count: int, keys: int) -> list[NewEvent]:
    return [
        NewEvent("hooks", "gift.updated", f"k{n % keys}", {"n": n}, event_id=f"evt_{n}")
        for n in range(count)
    ]


def test_four_workers_claim_every_event_once_in_order_per_key(state_location: str) -> None:
    state = open_state(state_location)
    store = inbox_of(state)
    assert store.inbox_enqueue(_events(200, keys=7)) == 200
    assert store.inbox_enqueue(_events(20, keys=7)) == 0  # redelivered: known by id
    done: list[int] = []
    by_key: dict[str, list[int]] = defaultdict(list)
    lock, errors = threading.Lock(), list[BaseException]()

    def worker() -> None:
        opened = open_state(state_location)
        mine = inbox_of(opened)
        try:
            idle = 0
            while idle < 20:  # the others may hold the earlier events of every key left
                claimed = mine.inbox_claim("hooks", 5, HOUR)
                idle = 0 if claimed else idle + 1
                with lock:
                    for event in claimed:
                        done.append(event.seq)
                        by_key[event.key].append(event.record["n"])
                mine.inbox_done([event.seq for event in claimed])
        except BaseException as error:  # noqa: BLE001 - the assertion below reports it
            errors.append(error)
        finally:
            opened.close()

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert errors == []
    assert sorted(done) == sorted(set(done))  # no event claimed twice
    assert len(done) == 200
    assert all(numbers == sorted(numbers) for numbers in by_key.values())
    assert store.inbox_events("hooks") == []
    state.close()


def test_a_failing_event_holds_back_its_key_until_it_is_given_up_on(state_location: str) -> None:
    state = open_state(state_location)
    store = inbox_of(state)
    store.inbox_enqueue(_events(4, keys=2))  # k0: 0, 2; k1: 1, 3
    first = store.inbox_claim("hooks", 10, 60)
    assert [e.record["n"] for e in first] == [0, 1]  # not 2 or 3: their keys' earlier ones wait
    store.inbox_failed([(first[0].seq, "sink down")], lambda attempts: 30.0, max_attempts=2)
    store.inbox_done([first[1].seq])
    [three] = store.inbox_claim("hooks", 10, 60)
    assert three.record == {"n": 3}
    store.inbox_done([three.seq])
    time_passes(state_location, 31)
    assert store.inbox_claim("hooks", 10, 60)[0].attempts == 1  # 0, retried
    store.inbox_release("hooks", lambda holder: True)  # a killed server's claims end
    [again] = store.inbox_claim("hooks", 10, 60)
    store.inbox_failed([(again.seq, "still down")], lambda attempts: 30.0, 2)
    assert store.inbox_depth() == {("hooks", "failed"): 1, ("hooks", "pending"): 1}
    # Given up on, 0 no longer holds back its key: 2 goes; `inbox retry` brings 0 back.
    [two] = store.inbox_claim("hooks", 10, 60)
    assert two.record == {"n": 2}
    store.inbox_done([two.seq])
    assert store.inbox_retry("hooks") == 1
    [zero] = store.inbox_claim("hooks", 10, 60)
    assert (zero.record, zero.attempts) == ({"n": 0}, 0)
    store.inbox_done([zero.seq])
    assert store.inbox_prune(keep=HOUR) == 0  # received 31 s ago
    assert store.inbox_prune(keep=30) == 4
    assert store.inbox_events("hooks", ("pending", "failed", "done")) == []
    state.close()


def test_a_starting_server_frees_claims_that_ran_out_or_whose_holder_is_gone_only(
    state_location: str,
) -> None:
    state = open_state(state_location)
    store = inbox_of(state)
    store.inbox_enqueue(_events(3, keys=3))
    [live] = store.inbox_claim("hooks", 1, 30, holder="server-a")
    [dead] = store.inbox_claim("hooks", 1, 30, holder="server-b")
    [late] = store.inbox_claim("hooks", 1, 5, holder="server-c")
    # Server d starts 10 s later beside a, which runs: b was killed, c's lease ran out.
    time_passes(state_location, 10)
    assert store.inbox_release("hooks", lambda holder: holder == "server-b") == 2
    taken = store.inbox_claim("hooks", 10, 30, holder="server-d")
    assert [e.seq for e in taken] == [dead.seq, late.seq]  # never a's: it is working on it
    # a renews its claim while it works (to 100 s from the start); nobody else can renew it.
    assert store.inbox_renew([live.seq], "server-d", 90) == 0
    assert store.inbox_renew([live.seq], "server-a", 90) == 1
    time_passes(state_location, 40)
    retaken = store.inbox_claim("hooks", 10, 80, holder="server-e")
    assert [e.seq for e in retaken] == [dead.seq, late.seq]  # d's ran out at 40 s
    time_passes(state_location, 49)
    assert store.inbox_claim("hooks", 10, 31, holder="server-f") == []
    store.inbox_done([e.seq for e in retaken])
    assert store.inbox_renew([dead.seq], "server-e", 100) == 0  # done: nothing to renew
    time_passes(state_location, 2)
    [again] = store.inbox_claim("hooks", 10, 29, holder="server-f")
    assert again.seq == live.seq  # a's renewed lease ran out unrenewed: a died
    state.close()


def test_postgres_claims_and_retries_go_by_the_databases_clock_not_each_machines(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = open_state(postgres_url), open_state(postgres_url)
    mine, theirs = inbox_of(a), inbox_of(b)
    mine.inbox_enqueue(_events(2, keys=2))
    [held] = mine.inbox_claim("hooks", 1, 30, holder="server-a")
    real = time.time
    # b's machine runs 100 s ahead: a's claim has not run out, whatever b's clock says.
    monkeypatch.setattr(time, "time", lambda: real() + 100)
    assert theirs.inbox_release("hooks", lambda holder: False) == 0
    [other] = theirs.inbox_claim("hooks", 10, 30, holder="server-b")
    assert other.seq != held.seq
    assert all(e.leased_until for e in theirs.inbox_events("hooks"))  # both claims live
    # Now 100 s behind: the event it failed waits its 30 s all the same.
    monkeypatch.setattr(time, "time", lambda: real() - 100)
    theirs.inbox_failed([(other.seq, "sink down")], lambda attempts: 30.0, max_attempts=5)
    monkeypatch.setattr(time, "time", real)
    assert mine.inbox_claim("hooks", 10, 30, holder="server-c") == []
    time_passes(postgres_url, 31)
    taken = mine.inbox_claim("hooks", 10, 30, holder="server-c")
    assert [e.seq for e in taken] == [held.seq, other.seq]
    a.close()
    b.close()
