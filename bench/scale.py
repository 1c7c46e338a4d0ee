"""Scaling out: 1, 2 and 4 `connector worker` processes on Postgres state and a Redis budget.

One Virtuous emulator serves 8 organizations, each with its own rate budget (a fixed window of
L requests per W seconds, scaled down from 5,000 an hour). Each organization has two scheduled
recipes of CSV gifts (16 in all, listed so that consecutive ones belong to different
organizations); N workers started together with ``--once`` share them: each recipe runs once, in
whichever worker takes its lease first, and the two recipes of one organization draw from its
one budget in Redis, whichever workers run them.

Printed per worker count: total gifts/s, against what the organizations' windows allow (each
worker runs one recipe at a time, so N workers keep at most min(N, 8) organizations busy; a
recipe of R requests at L per window waits out ceil(R / L) - 1 whole windows), and for each
organization the most requests the emulator took in any of its windows. Goals (issue 13):
throughput grows with workers (N workers at least 0.6 x N times one worker's gifts/s: what is
lost is start-up, the last recipes, and on a small machine the workers' own CPU) while the
budgets are the bound; every gift once; no window over its limit (no 429).

    .venv/bin/python bench/scale.py             # 9,600 gifts per worker count (about 3 minutes)
    .venv/bin/python bench/scale.py --quick     # 4,800 gifts (about 90 seconds)
    .venv/bin/python bench/scale.py --gifts 600 --limit 5 --window 1 --batch 20

Needs PostgreSQL (``CONNECTOR_TEST_POSTGRES``, default postgresql://postgres@127.0.0.1:5432/test)
and Redis (``CONNECTOR_TEST_REDIS``, default redis://127.0.0.1:6379/0); each run uses a schema and
a key prefix of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.virtuous.emulator.app import EmulatorSettings, create_app  # noqa: E402
from core.emulation import EmulatorServer  # noqa: E402

ORGS = 8
RECIPES_PER_ORG = 2
POSTGRES = os.environ.get("CONNECTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("CONNECTOR_TEST_REDIS", "redis://127.0.0.1:6379/0")
CONNECTOR = Path(sys.executable).parent / "connector"
# Throughput per worker may fall short of linear by this much: start-up, the last recipes run
# by fewer workers than there are, and (on a small machine) the workers' own CPU.
GOAL_OF_LINEAR = 0.6

RECIPE = """\
version: 1
name: {name}
schedule: "* * * * *"
source: {{use: file.csv, with: {{path: {name}.csv, key: id}}}}
map:
  transactionSource: "'Bench'"
  transactionId: record.id
  amount: record.amount
  giftDate: "'2025-01-01'"
  giftType: "'Cash'"
  contact: {{email: record.email}}
sink:
  use: virtuous.gift_transactions
  with: {{base_url: "{url}", api_key: "{key}", batch_size: {batch}}}
"""


@dataclass(frozen=True)
class Setup:
    gifts: int  # per worker count, over all recipes
    batch: int
    limit: int  # each organization's requests per window
    window: float

    @property
    def per_recipe(self) -> int:
        return self.gifts // (ORGS * RECIPES_PER_ORG)

    @property
    def recipes(self) -> int:
        return ORGS * RECIPES_PER_ORG

    def least_seconds(self, workers: int) -> float:
        """The least the organizations' windows allow: each worker runs one recipe at a time,
        recipes run together belong to different organizations, and a recipe of R requests at
        L per window waits out ceil(R / L) - 1 whole windows (its last requests go at once)."""
        requests = math.ceil(self.per_recipe / self.batch)
        waves = math.ceil(self.recipes / min(workers, ORGS))
        return waves * (math.ceil(requests / self.limit) - 1) * self.window

    def bound(self, workers: int) -> float:
        """Gifts/s at the least the windows allow."""
        return self.per_recipe * self.recipes / self.least_seconds(workers)


@dataclass(frozen=True)
class Result:
    workers: int
    gifts: int
    seconds: float
    held_once: bool
    throttled: int
    most_per_org: dict[str, int]

    @property
    def rate(self) -> float:
        return self.gifts / self.seconds


def _key(org: int) -> str:
    return f"bench-scale-key-{org}"


def _recipes(folder: Path, url: str, setup: Setup) -> None:
    for copy in range(RECIPES_PER_ORG):
        for org in range(ORGS):
            name = f"gifts-{copy}-org{org}"  # sorted: consecutive recipes, other organizations
            rows = [
                f"{name}-{n},{n % 500 + 1}.00,donor{n}@example.org" for n in range(setup.per_recipe)
            ]
            (folder / f"{name}.csv").write_text("id,amount,email\n" + "\n".join(rows) + "\n")
            text = RECIPE.format(name=name, url=url, key=_key(org), batch=setup.batch)
            (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


def _schema() -> str:
    import psycopg

    name = f"connector_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    return name


def _drop(schema: str, prefix: str) -> None:
    import psycopg
    import redis

    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def run(workers: int, setup: Setup) -> Result:
    """``workers`` workers, started together, over a fresh emulator, schema and budget."""
    settings = EmulatorSettings.model_validate(
        {
            "api_keys": {_key(org): {"org": f"org-{org}"} for org in range(ORGS)},
            "rate_limit": setup.limit,
            "rate_window_seconds": setup.window,
        }
    )
    app = create_app(settings)
    schema, prefix = _schema(), f"connector-bench:{uuid.uuid4().hex[:12]}:"
    try:
        with EmulatorServer(app) as server, tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _recipes(folder, server.url, setup)
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
            env |= {
                "CONNECTOR_STATE_URL": f"{POSTGRES}?options=-csearch_path%3D{schema}",
                "CONNECTOR_RATE_URL": REDIS,
                "CONNECTOR_RATE_PREFIX": prefix,
            }
            command = [str(CONNECTOR), "worker", "--dir", str(folder), "--once"]
            start = time.perf_counter()
            processes = [
                subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
                for _ in range(workers)
            ]
            failed = [p.communicate()[1] for p in processes if p.wait() != 0]
            seconds = time.perf_counter() - start
            if failed:
                raise SystemExit(f"a worker failed:\n{failed[0]}")
            return _result(workers, seconds, server.url, app.state.emulator, setup)
    finally:
        _drop(schema, prefix)


def _result(workers: int, seconds: float, url: str, state: Any, setup: Setup) -> Result:
    holding = httpx.get(f"{url}/_emulator/state", timeout=60).json()
    held = [t["transactionId"] for t in [*holding["pending"], *holding["needsUpdate"]]]
    requests = [e for e in state.requests if e.path.startswith("/api") and e.org]
    windows = Counter((e.org, math.floor(e.time.timestamp() / setup.window)) for e in requests)
    most: dict[str, int] = {}
    for (org, _), count in windows.items():
        most[str(org)] = max(most.get(str(org), 0), count)
    expected = setup.per_recipe * ORGS * RECIPES_PER_ORG
    return Result(
        workers=workers,
        gifts=len(held),
        seconds=seconds,
        held_once=len(held) == expected and len(set(held)) == expected,
        throttled=sum(1 for e in requests if e.status == 429),
        most_per_org=dict(sorted(most.items())),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="4,800 gifts per worker count")
    parser.add_argument("--gifts", type=int, default=9600, help="per worker count, all recipes")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--limit", type=int, default=5, help="each organization's, per window")
    parser.add_argument("--window", type=float, default=1.0, help="seconds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    setup = Setup(4800 if args.quick else args.gifts, args.batch, args.limit, args.window)
    print(
        f"{ORGS} organizations, {setup.limit} requests per {setup.window:g} s each;"
        f" {ORGS * RECIPES_PER_ORG} recipes of {setup.per_recipe:,} gifts in batches of"
        f" {setup.batch}"
    )
    results = [run(workers, setup) for workers in args.workers]
    first = results[0]
    for result in results:
        growth = result.rate / first.rate
        wanted = GOAL_OF_LINEAR * result.workers / first.workers
        print(
            f"{result.workers} worker(s): {result.gifts:,} gifts in {result.seconds:.1f} s ="
            f" {result.rate:,.0f} gifts/s, {result.rate / setup.bound(result.workers):.0%} of"
            f" the {setup.bound(result.workers):,.0f}/s the windows allow"
        )
        if result is not first:
            print(
                f"  {growth:.2f}x the gifts/s of {first.workers} worker(s)"
                f" (goal >= {wanted:.2f}x: {'met' if growth >= wanted else 'MISSED'})"
            )
        most = max(result.most_per_org.values(), default=0)
        per_org = " ".join(f"{org}={n}" for org, n in result.most_per_org.items())
        print(f"  most requests in any window, per organization: {per_org}")
        print(
            f"{'met' if most <= setup.limit and not result.throttled else 'MISSED'}"
            f"     no window over {setup.limit} at {result.workers} worker(s)"
            f" (most {most}, {result.throttled} 429s)"
        )
        print(f"{'met' if result.held_once else 'MISSED'}     every gift once at {result.workers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
