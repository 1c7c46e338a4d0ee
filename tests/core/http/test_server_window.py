"""The governor paces by the server's own window: the limit a server reports belongs to the window
its reset times imply, not to the window we configured (simulated clock, fixed-window fake server).

The fake server counts each request when it arrives, in fixed windows aligned on multiples of its
window since the epoch, like the Virtuous emulator and most Redis-backed limiters, and reports
``X-RateLimit-Limit/-Remaining/-Reset`` (reset in whole epoch seconds, rounded up) on every answer.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from core.http import (
    BudgetStore,
    MemoryBudgetStore,
    RateLimit,
    RetryPolicy,
    Service,
    SqliteBudgetStore,
    build_client,
)
from tests.core.http.fakes import FakeClock

HOUR = RateLimit(requests=5000, per_seconds=3600)  # Virtuous's budget, as a recipe configures it


class FixedWindowServer:
    """At most ``limit`` requests per fixed ``window``; each request takes ``latency`` seconds."""

    def __init__(self, clock: FakeClock, limit: int, window: float, latency: float) -> None:
        self.clock, self.limit, self.window, self.latency = clock, limit, window, latency
        self.arrivals: list[float] = []
        self.statuses: list[int] = []
        self.counted: Counter[int] = Counter()  # requests per window index

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.now += self.latency / 2  # on the way there
        arrived = self.clock.now
        self.arrivals.append(arrived)
        index = math.floor(arrived / self.window)
        self.counted[index] += 1
        used = self.counted[index]
        reset = (index + 1) * self.window
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - used)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        status = 200 if used <= self.limit else 429
        if status == 429:
            headers["Retry-After"] = str(max(1, math.ceil(reset - arrived)))
        self.statuses.append(status)
        self.clock.now += self.latency / 2  # and back
        return httpx.Response(status, headers=headers)

    def most_in_a_window(self) -> int:
        return max(self.counted.values())


def _send(
    server: FixedWindowServer,
    clock: FakeClock,
    limit: RateLimit,
    requests: int,
    waits: list[str] | None = None,
) -> float:
    """Send ``requests`` POSTs through the central client; the simulated seconds they took."""
    service = Service(
        "Fake",
        "https://api.example.test",
        rate_limit=limit,
        retry=RetryPolicy(attempts=1, throttle_timeout=0),  # a 429 would surface, not be waited
    )
    started = clock.now
    with build_client(
        service,
        store=MemoryBudgetStore(),
        on_wait=waits.append if waits is not None else None,
        transport=httpx.MockTransport(server),
        clock=clock.time,
        sleep=clock.sleep,
    ) as client:
        for _ in range(requests):
            client.post("/api/v2/Gift/Transactions", json=[])
    return clock.now - started


@pytest.mark.parametrize(
    ("limit", "window", "requests"),
    [
        (6, 2.0, 12),  # issue 13: 600 gifts in batches of 50 against 6 per 2 seconds
        (500, 60.0, 1200),  # a per-minute budget, as Givebutter's
    ],
)
def test_the_server_limit_applies_to_the_server_window(
    limit: int, window: float, requests: int
) -> None:
    clock = FakeClock(now=1_700_000_040.0)  # on a window boundary of both servers
    server = FixedWindowServer(clock, limit, window, latency=0.001)
    waits: list[str] = []
    elapsed = _send(server, clock, HOUR, requests, waits)
    assert server.statuses == [200] * requests
    assert server.most_in_a_window() == limit
    # Each wait is announced once, against the server's limit (not our 5,000).
    until = time.strftime("%H:%M:%S", time.localtime(1_700_000_040.0 + window))
    assert waits[0] == f"waiting for the Fake rate limit until {until} ({limit}/{limit} used)"
    assert len(waits) == math.ceil(requests / limit) - 1
    # The least the windows allow: every window but the last one waited out, plus the requests.
    least = (math.ceil(requests / limit) - 1) * window
    assert least <= elapsed <= least + requests * 0.001 + 0.01


def test_our_configured_limit_stays_a_ceiling_under_a_looser_server() -> None:
    clock = FakeClock()
    server = FixedWindowServer(clock, limit=100, window=1.0, latency=0.001)
    elapsed = _send(server, clock, RateLimit(requests=5, per_seconds=10), 12)
    assert server.statuses == [200] * 12
    assert elapsed >= 20  # 5 per 10 s, ours, although the server would take 100 a second


def test_a_reset_far_ahead_never_stretches_the_server_limit_past_our_window(
    budget_store: BudgetStore,
) -> None:
    store, now = budget_store, 1_700_000_000.0
    # A daily quota: 10 left of 20,000 until tomorrow. Within that quota, the hourly ceiling of
    # our own still paces the requests (the daily limit is not spread over our hour).
    store.observe("k", remaining=10, reset_at=now + 86_400, limit=20_000, now=now)
    assert [store.take("k", 3, 60, now) for _ in range(4)] == [0, 0, 0, pytest.approx(60)]
    assert store.take("k", 3, 60, now + 60) == 0


def test_the_server_window_is_shared_through_the_state_database(
    shared_budgets: Callable[[], BudgetStore],
) -> None:
    one, two = shared_budgets(), shared_budgets()
    now = 1_700_000_000.0
    one.observe("k", remaining=5, reset_at=now + 2, limit=6, now=now)
    grants = [two.take("k", 5000, 3600, now) for _ in range(6)]
    assert grants[:5] == [0] * 5
    assert grants[5] == pytest.approx(2)  # the server's window, not our hour
    # The next server window: 6 more, then a wait for the first of them to leave it.
    assert [one.take("k", 5000, 3600, now + 2) for _ in range(6)] == [0] * 6
    assert two.take("k", 5000, 3600, now + 2) == pytest.approx(2)
    assert two.usage("k", 5000, 3600, now + 2).limit == 6


def test_a_state_file_from_before_server_windows_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:  # the budget tables as earlier versions created them
        db.executescript(
            """
            CREATE TABLE http_budget (key TEXT PRIMARY KEY, blocked_until REAL NOT NULL DEFAULT 0,
                server_remaining INTEGER, server_reset REAL, server_limit INTEGER);
            CREATE TABLE http_budget_log (key TEXT NOT NULL, at REAL NOT NULL);
            INSERT INTO http_budget (key, blocked_until) VALUES ('k', 1700000100.0);
            """
        )
    db.close()
    store, now = SqliteBudgetStore(path), 1_700_000_000.0
    assert store.take("k", 10, 60, now) == pytest.approx(100)  # what it held is kept
    store.observe("k", remaining=5, reset_at=now + 102, limit=6, now=now + 100)
    assert store.take("k", 10, 60, now + 100) == 0


@pytest.mark.parametrize(("limit", "window"), [(50, 1.0), (50, 3.6), (100, 60.0)])
def test_no_window_overshoot_at_20000_gifts(limit: int, window: float) -> None:
    # Issue 10: 20,000 gifts in 200 batches of 100, each request taking 20 ms, the recipe told the
    # server's budget; the first request opens a server window, where a fixed window allows no
    # more than a sliding one. The only slack is the server's reset rounded up to a whole second.
    requests, latency = 200, 0.02
    clock = FakeClock(now=math.ceil(1_700_000_000 / window) * window + 1e-6)
    server = FixedWindowServer(clock, limit, window, latency)
    elapsed = _send(server, clock, RateLimit(limit, window), requests)
    assert server.statuses == [200] * requests
    assert server.most_in_a_window() == limit
    windows = math.ceil(requests / limit)
    in_last = requests - (windows - 1) * limit
    least = max(requests * latency, (windows - 1) * window + in_last * latency)
    assert elapsed <= least * 1.10
