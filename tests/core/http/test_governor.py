"""The rate governor and its budget stores: the window is never exceeded (simulated clock), the
server's headers and Retry-After tighten it, SQLite shares it between stores and between real OS
processes, and the concurrency cap holds a slot until the body is closed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from core.http import (
    BudgetStore,
    GovernedTransport,
    MemoryBudgetStore,
    RateLimit,
    SqliteBudgetStore,
)
from tests.core.http.fakes import FakeClock, FakeServer

ROOT = Path(__file__).resolve().parents[3]


def _governed(
    server: FakeServer,
    clock: FakeClock,
    limit: RateLimit,
    *,
    store: BudgetStore | None = None,
    waits: list[str] | None = None,
) -> GovernedTransport:
    return GovernedTransport(
        server.transport(),
        service_name="Fake",
        rate_limit=limit,
        key="fake:test",
        store=store if store is not None else MemoryBudgetStore(),
        on_wait=waits.append if waits is not None else None,
        clock=clock.time,
        sleep=clock.sleep,
    )


def _get(transport: httpx.BaseTransport) -> httpx.Response:
    response = transport.handle_request(httpx.Request("GET", "https://api.example.test/x"))
    response.read()
    response.close()
    return response


def _most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_never_more_than_the_limit_in_any_window(budget_store: BudgetStore) -> None:
    clock = FakeClock()
    start = clock.now
    server = FakeServer(clock=clock)
    transport = _governed(server, clock, RateLimit(requests=5, per_seconds=10), store=budget_store)
    for _ in range(12):
        _get(transport)
    assert _most_in_any_window(server.times, 10) == 5
    assert [t - start for t in server.times] == [0] * 5 + [10] * 5 + [20] * 2


def test_spread_requests_slide_out_of_the_window(budget_store: BudgetStore) -> None:
    clock = FakeClock()
    server = FakeServer(clock=clock)
    transport = _governed(server, clock, RateLimit(requests=3, per_seconds=10), store=budget_store)
    for _ in range(9):
        _get(transport)
        clock.now += 4  # a slow caller: the window slides, it never waits a full period
    assert _most_in_any_window(server.times, 10) <= 3
    assert max(clock.sleeps, default=0) <= 2


def _rate_headers(remaining: int, reset: float, limit: int = 5000) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
    }


def test_server_headers_lower_the_budget_and_the_wait_is_announced(
    budget_store: BudgetStore,
) -> None:
    clock = FakeClock()
    start, reset = clock.now, clock.now + 60
    server = FakeServer(
        # Other integrations of the organisation already spent most of the hour.
        lambda request: httpx.Response(200, headers=_rate_headers(max(0, 3 - server.calls), reset)),
        clock=clock,
    )
    waits: list[str] = []
    transport = _governed(server, clock, RateLimit(5000, 3600), waits=waits, store=budget_store)
    for _ in range(5):
        _get(transport)
    # One request learns that 2 remain; those 2 go; then nothing until the server's reset.
    assert [t - start for t in server.times] == [0, 0, 0, 60, 60]
    until = time.strftime("%H:%M:%S", time.localtime(reset))
    assert waits == [f"waiting for the Fake rate limit until {until} (5,000/5,000 used)"]


def test_a_lower_limit_header_replaces_the_configured_one(budget_store: BudgetStore) -> None:
    clock = FakeClock()
    server = FakeServer(
        lambda request: httpx.Response(
            200, headers=_rate_headers(100, clock.now + 3600, limit=1500)
        ),
        clock=clock,
    )
    store = budget_store
    transport = _governed(server, clock, RateLimit(5000, 3600), store=store)
    _get(transport)
    assert store.usage("fake:test", 5000, 3600, clock.now).limit == 1500


def test_reset_given_as_seconds_from_now(budget_store: BudgetStore) -> None:
    clock = FakeClock()
    start = clock.now
    server = FakeServer(
        httpx.Response(200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}),
        httpx.Response(200),
        clock=clock,
    )
    transport = _governed(server, clock, RateLimit(100, 60), store=budget_store)
    _get(transport)
    _get(transport)
    assert server.times[1] - start == 30


def test_headers_are_ignored_when_the_service_names_none(budget_store: BudgetStore) -> None:
    clock = FakeClock()
    server = FakeServer(httpx.Response(200, headers=_rate_headers(0, clock.now + 60)), clock=clock)
    limit = RateLimit(100, 60, header_limit=None, header_remaining=None, header_reset=None)
    transport = _governed(server, clock, limit, store=budget_store)
    for _ in range(3):
        _get(transport)
    assert clock.sleeps == []


def test_a_429_blocks_everyone_sharing_the_budget(budget_store: BudgetStore) -> None:
    clock, store, waits = FakeClock(), budget_store, list[str]()
    start = clock.now
    throttled = FakeServer(httpx.Response(429, headers={"Retry-After": "7"}), clock=clock)
    other = FakeServer(clock=clock)
    first = _governed(throttled, clock, RateLimit(100, 60), store=store)
    second = _governed(other, clock, RateLimit(100, 60), store=store, waits=waits)
    assert _get(first).status_code == 429
    _get(second)
    assert other.times == [start + 7]
    assert len(waits) == 1
    assert "Fake asked to retry later" in waits[0]


def test_two_stores_on_one_database_share_the_budget(
    shared_budgets: Callable[[], BudgetStore],
) -> None:
    one, two = shared_budgets(), shared_budgets()
    now = 1_700_000_000.0
    assert [one.take("k", 3, 60, now), two.take("k", 3, 60, now), one.take("k", 3, 60, now)] == [
        0,
        0,
        0,
    ]
    assert two.take("k", 3, 60, now + 1) == pytest.approx(59)
    assert two.take("other", 3, 60, now) == 0  # budgets are per key
    assert one.take("k", 3, 60, now + 60) == 0  # the first three slid out

    two.block_until("k", now + 200)
    assert one.take("k", 3, 60, now + 100) == pytest.approx(100)

    one.observe("j", remaining=1, reset_at=now + 50, limit=10, now=now)
    assert two.take("j", 10, 60, now) == 0
    assert two.take("j", 10, 60, now + 1) == pytest.approx(49)
    assert one.usage("j", 10, 60, now + 1).used == 10


def test_claims_from_many_threads_at_once_never_pass_the_limit(
    shared_budgets: Callable[[], BudgetStore],
) -> None:
    now, granted, lock = 1_700_000_000.0, [0], threading.Lock()

    def claim() -> None:
        store = shared_budgets()  # a process of its own: its own connection
        for _ in range(10):
            if store.take("k", 15, 60, now) == 0:
                with lock:
                    granted[0] += 1

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted == [15]


def test_observations_within_one_window_only_ever_lower_the_remaining(
    budget_store: BudgetStore,
) -> None:
    store, now = budget_store, 1_700_000_000.0
    store.observe("k", remaining=2, reset_at=now + 60, limit=None, now=now)
    # A response that left the server before our last two requests were counted.
    store.observe("k", remaining=4, reset_at=now + 60, limit=None, now=now)
    assert [store.take("k", 100, 3600, now) for _ in range(3)] == [0, 0, pytest.approx(60)]
    store.observe("k", remaining=0, reset_at=now - 1, limit=None, now=now)  # stale: ignored
    # A new window replaces the old count.
    store.observe("k", remaining=50, reset_at=now + 3600, limit=None, now=now + 61)
    assert store.take("k", 100, 3600, now + 61) == 0


_WORKER = textwrap.dedent(
    """
    import sys
    import httpx
    from core.http import GovernedTransport, RateLimit, SqliteBudgetStore

    class Refused(Exception):
        pass

    def refuse(seconds):
        raise Refused()  # instead of waiting a minute: report how many got through

    sent = []
    transport = GovernedTransport(
        httpx.MockTransport(lambda request: sent.append(1) or httpx.Response(200)),
        service_name="Fake", rate_limit=RateLimit(25, 60), key="fake:shared",
        store=SqliteBudgetStore(sys.argv[1]), sleep=refuse,
    )
    sys.stdin.readline()  # start together
    try:
        for _ in range(20):
            transport.handle_request(httpx.Request("GET", "https://api.example.test/x"))
    except Refused:
        pass
    print(len(sent))
    """
)


def test_two_processes_share_one_budget_through_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / ".connector" / "state.db"
    SqliteBudgetStore(path)  # create the schema before the race
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path)],
            cwd=ROOT,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for worker in workers:  # both are up and importing by now; release them together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = [worker.communicate(timeout=60) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], results
    sent = [int(out) for out, _ in results]
    assert sum(sent) == 25  # 40 attempts, a budget of 25: exactly 25 went out, across both


def test_concurrency_cap_holds_until_the_body_is_closed() -> None:
    active, peak, lock = 0, 0, threading.Lock()

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return httpx.Response(200)

    limit = RateLimit(1000, 1, max_concurrency=2)
    transport = GovernedTransport(
        httpx.MockTransport(slow),
        service_name="Fake",
        rate_limit=limit,
        key="fake:cap",
        store=MemoryBudgetStore(),
    )
    threads = [threading.Thread(target=_get, args=(transport,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2

    single = GovernedTransport(
        # A streamed body, as from the network: the connection is busy until it is closed.
        httpx.MockTransport(lambda request: httpx.Response(200, content=iter([b"body"]))),
        service_name="Fake",
        rate_limit=RateLimit(1000, 1, max_concurrency=1),
        key="fake:one",
        store=MemoryBudgetStore(),
    )
    open_response = single.handle_request(httpx.Request("GET", "https://api.example.test/x"))
    waiter = threading.Thread(target=_get, args=(single,))
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()  # the first body is still open
    open_response.close()
    waiter.join(5)
    assert not waiter.is_alive()


def test_a_slow_request_counts_in_the_window_where_it_arrived() -> None:
    # A server counts a request when it arrives, in fixed windows. One that was claimed late in
    # a window but arrived in the next must count there too, or the next window gets one too
    # many (no X-RateLimit headers here to correct it, as with many services).
    clock = FakeClock(now=1_700_000_000.5)
    latencies = iter([0.6, 0.05, 0.05, 0.05, 0.05, 0.05])
    arrivals: list[float] = []

    def server(request: httpx.Request) -> httpx.Response:
        clock.now += next(latencies)  # on the way there
        arrivals.append(clock.now)
        window = int(clock.now)
        if sum(1 for t in arrivals if int(t) == window) > 2:
            return httpx.Response(429)
        clock.now += 0.05  # and back
        return httpx.Response(200)

    headerless = RateLimit(2, 1, header_limit=None, header_remaining=None, header_reset=None)
    transport = GovernedTransport(
        httpx.MockTransport(server),
        service_name="Fake",
        rate_limit=headerless,
        key="fake:slow",
        store=MemoryBudgetStore(),
        clock=clock.time,
        sleep=clock.sleep,
    )
    statuses = [_get(transport).status_code for _ in range(6)]
    assert statuses == [200] * 6
