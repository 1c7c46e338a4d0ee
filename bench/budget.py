"""How well a run uses Virtuous's rate budget: N gifts through the batch endpoint.

Runs against the Virtuous emulator with a scaled-down window (say 5 requests a second instead of
5,000 an hour) and prints the requests used against the minimum ceil(N / batch size), the 429s
seen, and the elapsed time against the least the limit allows. Goals: requests equal to the
minimum, zero 429s, elapsed time within 10% of the minimum.

    .venv/bin/python bench/budget.py --gifts 2000 --batch 100 --limit 5 --window 1
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
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
  with: {{base_url: "{url}", api_key: bench-key, batch_size: {batch},
         requests_per_hour: {limit}, rate_window_seconds: {window}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--limit", type=int, default=5, help="requests per window")
    parser.add_argument("--window", type=float, default=1.0, help="window in seconds")
    args = parser.parse_args()

    settings = EmulatorSettings.model_validate(
        {
            "api_keys": {"bench-key": {"org": "bench"}},
            "rate_limit": args.limit,
            "rate_window_seconds": args.window,
            "gift_batch_max_size": max(100, args.batch),
        }
    )
    app = create_app(settings)
    with tempfile.TemporaryDirectory() as folder, EmulatorServer(app) as server:
        base = Path(folder)
        with (base / "gifts.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "amount", "email"])
            writer.writerows(
                [f"b-{n}", f"{n % 500 + 1}.00", f"donor{n}@example.org"] for n in range(args.gifts)
            )
        (base / "recipe.yaml").write_text(
            RECIPE.format(url=server.url, batch=args.batch, limit=args.limit, window=args.window)
        )
        os.environ["CONNECTOR_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        registry = load_plugins(load_entrypoints=False)[1]
        state = open_state(base / "state.db")
        started = time.perf_counter()
        report = Runner(load_recipe(base / "recipe.yaml", registry), state).run()
        elapsed = time.perf_counter() - started
        state.close()
        log = app.state.emulator.requests
    sent = len([r for r in log if r.path.startswith("/api/v2/Gift/Transaction")])
    throttled = len([r for r in log if r.status == 429])
    minimum = math.ceil(args.gifts / args.batch)
    # A full bucket allows `limit` requests at once; each later one needs window/limit seconds.
    least_time = max(0.0, (minimum - args.limit) * args.window / args.limit)
    print(f"gifts written      {report.counts['written']:>8,} of {args.gifts:,}")
    print(f"requests           {sent:>8} (minimum {minimum})")
    print(f"429s seen          {throttled:>8}")
    print(f"elapsed            {elapsed:>8.2f} s (least the limit allows: {least_time:.2f} s)")
    goals = {
        "requests at the minimum": sent == minimum,
        "no 429": throttled == 0,
        "within 10% of the least time": elapsed <= least_time * 1.10 + 0.25,
    }
    for goal, met in goals.items():
        print(f"{'met    ' if met else 'MISSED '} {goal}")


if __name__ == "__main__":
    main()
