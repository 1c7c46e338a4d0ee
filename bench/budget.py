"""How well a run uses Virtuous's rate budget: N gifts through the batch endpoint.

Runs the CSV -> Virtuous gifts sync against the Virtuous emulator with scaled-down windows (say 50
requests per 3.6 s instead of 5,000 an hour) and prints, per scenario, the requests used against
the minimum ceil(N / batch size), the 429s seen, and the elapsed time against the least the windows
allow. Goals (issue 10): requests at the minimum, zero 429s, elapsed within 10% of the least.

The least the windows allow is measured, not only computed: requests take time. Each scenario
first runs the same sync with a limit that never binds (the baseline, in the same run), which
gives the start-up, the pace of each request and the final commit on this machine. The least is
the baseline's requests replayed at their own pace (each after the gap that preceded it in the
baseline), none sent in a window that already holds L of them (it waits for the next window),
then the commit; never less than the baseline. When requests take no time that is the start-up,
g - 1 whole windows (g = ceil(minimum / L)) and the last window's requests; when the machine is
slower than the limit it is the baseline; in between, only the stretches where the machine is
faster than the limit wait. The figure for requests that take no time, (g - 1) x W, is printed.
The emulator's windows are fixed (aligned on multiples of W since the epoch): each run starts so
that its first request opens a window, the case where fixed windows allow no more than a sliding
window would (a run starting late in a window could squeeze two windows' worth in one W).

Scenarios, by default: the original one (2,000 gifts, 5 per 1 s), issue 10's 20,000 gifts at a
1 s, 3.6 s and 60 s window, and issue 13's 600 gifts in batches of 50 against 6 per 2 s where the
recipe keeps Virtuous's hourly budget and the governor learns the window from the headers.

    .venv/bin/python bench/budget.py                      # every scenario (about two minutes)
    .venv/bin/python bench/budget.py --quick              # without the 60 s window
    .venv/bin/python bench/budget.py --gifts 2000 --batch 100 --limit 5 --window 1 [--learn]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.virtuous.emulator.app import EmulatorSettings, create_app  # noqa: E402
from core.emulation import EmulatorServer  # noqa: E402
from core.plugins import load_plugins  # noqa: E402
from core.recipe import load_recipe  # noqa: E402
from core.runner import Runner  # noqa: E402
from core.state import open_state  # noqa: E402

RECIPE = """\
version: 1
name: budget
source: {{use: file.csv, with: {{path: gifts.csv, key: id}}}}
map:
  transactionSource: "'Bench'"
  transactionId: record.id
  amount: record.amount
  giftDate: "'2025-01-01'"
  giftType: "'Cash'"
  contact: {{email: record.email}}
sink:
  use: virtuous.gift_transactions
  with: {{base_url: "{url}", api_key: bench-key, batch_size: {batch}{budget}}}
"""
BUDGET = ", requests_per_hour: {limit}, rate_window_seconds: {window}"
UNBOUND = 10**9  # a limit no run reaches: the baseline
_MARGIN = 0.02  # seconds after a window begins that the first request is aimed at
GIFTS = "/api/v2/Gift/Transaction"


@dataclass(frozen=True)
class Scenario:
    name: str
    gifts: int
    batch: int
    limit: int  # the emulator's requests per window
    window: float  # the emulator's window, seconds
    learn: bool = False  # the recipe keeps 5,000/hour and learns the window from the headers

    @property
    def minimum(self) -> int:
        return math.ceil(self.gifts / self.batch)

    @property
    def windows(self) -> int:
        """Windows the minimum needs at ``limit`` each."""
        return math.ceil(self.minimum / self.limit)

    @property
    def in_last_window(self) -> int:
        return self.minimum - (self.windows - 1) * self.limit


SCENARIOS = [
    Scenario("2,000 gifts, 5 per 1 s", 2000, 100, 5, 1.0),
    Scenario("20,000 gifts, 50 per 1 s", 20000, 100, 50, 1.0),
    Scenario("20,000 gifts, 50 per 3.6 s", 20000, 100, 50, 3.6),
    Scenario("20,000 gifts, 100 per 60 s", 20000, 100, 100, 60.0),
    Scenario("600 gifts, 6 per 2 s, learnt", 600, 50, 6, 2.0, learn=True),
]


@dataclass(frozen=True)
class Run:
    """One sync as the emulator saw it. Times in seconds from the start of the run."""

    written: int
    sent: int
    throttled: int
    elapsed: float
    arrivals: tuple[float, ...]  # when each gift request reached the emulator

    @property
    def first(self) -> float:
        return self.arrivals[0] if self.arrivals else 0.0

    @property
    def last(self) -> float:
        return self.arrivals[-1] if self.arrivals else 0.0


def _write_gifts(path: Path, count: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "amount", "email"])
        writer.writerows(
            [f"b-{n}", f"{n % 500 + 1}.00", f"donor{n}@example.org"] for n in range(count)
        )


def _wait_for_window(window: float, lead: float) -> None:
    """Sleep until ``lead`` seconds before the next of the emulator's windows begins (they begin
    on multiples of the window since the epoch), so that the first request opens a window."""
    now = time.time()
    start = math.ceil((now + lead) / window) * window + _MARGIN
    time.sleep(max(0.0, start - lead - now))


def sync(
    scenario: Scenario, limit: int, window: float, timeout: float, lead: float | None = None
) -> Run | None:
    """Run the sync against an emulator allowing ``limit`` per ``window``; None past ``timeout``.
    With ``lead`` (the start-up before the first request), the first request opens a window."""
    settings = EmulatorSettings.model_validate(
        {
            "api_keys": {"bench-key": {"org": "bench"}},
            "rate_limit": limit,
            "rate_window_seconds": window,
            "gift_batch_max_size": max(100, scenario.batch),
        }
    )
    app = create_app(settings)
    budget = "" if scenario.learn else BUDGET.format(limit=limit, window=window)
    with tempfile.TemporaryDirectory() as folder, EmulatorServer(app) as server:
        base = Path(folder)
        _write_gifts(base / "gifts.csv", scenario.gifts)
        recipe = RECIPE.format(url=server.url, batch=scenario.batch, budget=budget)
        (base / "recipe.yaml").write_text(recipe)
        registry = load_plugins(load_entrypoints=False)[1]
        counts: dict[str, int] = {}
        failures: list[BaseException] = []

        def run() -> None:
            try:  # the state is opened in the thread that uses it (a SQLite connection)
                state = open_state(base / "state.db")
                try:
                    report = Runner(load_recipe(base / "recipe.yaml", registry), state).run()
                finally:
                    state.close()
            except BaseException as error:  # shown by the main thread, unless it gave up waiting
                failures.append(error)
            else:
                counts.update({str(outcome): n for outcome, n in report.counts.items()})

        if lead is not None:
            _wait_for_window(window, lead)
        started = time.time()
        worker = threading.Thread(target=run, daemon=True)  # a run past the timeout is left
        worker.start()
        worker.join(timeout)
        elapsed = time.time() - started
        if worker.is_alive():
            return None
        if failures:
            raise failures[0]
        log = app.state.emulator.requests
    arrivals = sorted(r.time.timestamp() - started for r in log if r.path.startswith(GIFTS))
    return Run(
        written=counts.get("written", 0),
        sent=len(arrivals),
        throttled=len([r for r in log if r.status == 429]),
        elapsed=elapsed,
        arrivals=tuple(arrivals),
    )


def least_time(scenario: Scenario, baseline: Run) -> float:
    """The least the windows allow on this machine: see the module's docstring. The baseline's
    own pace is kept request by request: the emulator slows down as it fills, so the last
    window's requests take longer than the average one."""
    first = baseline.first
    used: Counter[int] = Counter()
    at = previous = first
    for arrival in baseline.arrivals:
        at += arrival - previous
        previous = arrival
        window = int((at - first) // scenario.window)
        while used[window] >= scenario.limit:  # full: the request waits for the next window
            window += 1
            at = max(at, first + window * scenario.window)
        used[window] += 1
    commit = baseline.elapsed - baseline.last
    return max(baseline.elapsed, at + commit)


@dataclass(frozen=True)
class Round:
    baseline: Run
    least: float
    run: Run | None  # None: stopped at the timeout

    @property
    def ratio(self) -> float:
        return self.run.elapsed / self.least if self.run is not None else math.inf


def one_round(scenario: Scenario) -> Round:
    """The baseline, then the limited run right after it (a machine that slows down between
    rounds slows both)."""
    baseline = sync(scenario, UNBOUND, 1.0, timeout=600)
    assert baseline is not None
    least = least_time(scenario, baseline)
    run = sync(scenario, scenario.limit, scenario.window, max(60, 10 * least), baseline.first)
    return Round(baseline, least, run)


def measure(scenario: Scenario, rounds: int) -> bool:
    """Run one scenario, print its median round's figures and the goals; whether all are met."""
    done: list[Round] = []
    while len(done) < rounds and not (done and done[-1].run is None):  # one stop is enough
        done.append(one_round(scenario))
    done.sort(key=lambda r: r.ratio)
    median = done[len(done) // 2]
    baseline, least, run = median.baseline, median.least, median.run
    how = "learnt from the headers" if scenario.learn else "given to the recipe"
    print(f"\n{scenario.name} (window {how}; median of {rounds} round{'s' * (rounds > 1)})")
    if run is None:
        print(f"elapsed        stopped after {max(60, 10 * least):.0f} s (least: {least:.2f} s)")
        print("MISSED  finished")
        return False
    ratios = ", ".join(f"{r.ratio:.2f}x" for r in done)
    runs = [r.run for r in done if r.run is not None]
    instant = (scenario.windows - 1) * scenario.window
    print(f"gifts written      {run.written:>8,} of {scenario.gifts:,}")
    print(f"requests           {run.sent:>8} (minimum {scenario.minimum})")
    print(f"429s seen          {sum(r.throttled for r in runs):>8} (every round)")
    print(f"elapsed            {run.elapsed:>8.2f} s ({median.ratio:.2f}x the least; {ratios})")
    print(f"least              {least:>8.2f} s (the windows, with this machine's requests)")
    print(f"baseline           {baseline.elapsed:>8.2f} s (the same sync, no limit, this run)")
    print(f"windows alone      {instant:>8.2f} s (requests that would take no time)")
    last = scenario.in_last_window
    took, expected = run.last - run.arrivals[-last], baseline.last - baseline.arrivals[-last]
    print(f"last window        {took:>8.2f} s for its {last} requests (baseline: {expected:.2f} s)")
    goals = {
        "every gift written": all(r.written == scenario.gifts for r in runs),
        "requests at the minimum": all(r.sent == scenario.minimum for r in runs),
        "no 429": sum(r.throttled for r in runs) == 0,
        "within 10% of the least time": median.ratio <= 1.10,
    }
    for goal, met in goals.items():
        print(f"{'met    ' if met else 'MISSED '} {goal}")
    return all(goals.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, help="run one scenario of this many gifts")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--limit", type=int, default=5, help="requests per window")
    parser.add_argument("--window", type=float, default=1.0, help="window in seconds")
    parser.add_argument("--learn", action="store_true", help="the recipe is not told the window")
    parser.add_argument("--quick", action="store_true", help="skip windows of a minute")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of a scenario under 30 s (others: one)"
    )
    args = parser.parse_args()
    if args.gifts is not None:
        name = f"{args.gifts:,} gifts, {args.limit} per {args.window:g} s"
        scenarios = [Scenario(name, args.gifts, args.batch, args.limit, args.window, args.learn)]
    else:
        scenarios = [s for s in SCENARIOS if not (args.quick and s.window >= 60)]
    os.environ["CONNECTOR_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    when = time.strftime("%Y-%m-%d %H:%M")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {when}")
    # One small sync first, so no measured run pays the imports and first-use costs (the
    # baseline's start-up also aims the limited run's first request at a window's start).
    sync(Scenario("warm-up", 200, 100, 1, 1.0), UNBOUND, 1.0, timeout=600)
    met = [measure(s, args.rounds if s.windows * s.window < 30 else 1) for s in scenarios]
    print(f"\n{sum(met)} of {len(met)} scenarios meet every goal")


if __name__ == "__main__":
    main()
