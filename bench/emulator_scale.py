"""Does a sync against the Virtuous emulator take time linear in N, and memory constant in N?

Runs ``connector run`` (a CSV of N gifts -> virtuous.gift_transactions, batches of 100) as its own
process against the Virtuous emulator served by another process, and prints:

- time: elapsed at N and at 4N (by default 25,000 and 100,000 gifts); linear when the ratio is
  near 4. The baseline, measured in the same run, is the same syncs against the emulator as it
  was, rebuilding the set of every submitted transaction on each request (quadratic).
- memory: the connector's peak RSS at 10,000 and at 1,000,000 gifts.

Goals (issue 10): time(4N) / time(N) <= 5 (4 is linear; the baseline's is near 16 at large N),
and the 1M-gift sync's peak memory within 1.25x of the 10k-gift sync's.

    .venv/bin/python bench/emulator_scale.py [--gifts N] [--million M] [--quick]

``--quick`` leaves out the 1M-gift sync (a couple of minutes) and measures memory at 4N.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_RATIO = 5.0
GOAL_MEMORY = 1.25
KEY = "bench-key"

RECIPE = """\
version: 1
name: scale
source: {{use: file.csv, with: {{path: gifts.csv, key: id}}}}
map:
  transactionSource: "'Bench'"
  transactionId: record.id
  amount: record.amount
  giftDate: "'2025-01-01'"
  giftType: "'Cash'"
  contact: {{email: record.email, referenceId: record.email}}
sink:
  use: virtuous.gift_transactions
  with: {{base_url: "{url}", api_key: {key}, batch_size: 100, requests_per_hour: 1000000000}}
"""

# The emulator as it was before its indexes: a set of every submitted transaction, rebuilt on
# each request. Run in the serving process for the baseline.
_REBUILT = """
import itertools
from connectors.virtuous.emulator import store

built = {}

def submitted(self, key):
    # Rebuilt once per request, as it was: within a request nothing is parked until its end.
    size = len(self.pending) + len(self.needs_update) + len(self.imported) + len(self.gifts)
    if built.get("size") != size:
        held = itertools.chain(self.pending, self.needs_update, self.imported)
        keys = {
            store.transaction_key(p.transaction_source, p.transaction_id)
            for p in held
            if p.kind == "gift" and p.transaction_id
        }
        keys.update(
            store.transaction_key(g.transaction_source, g.transaction_id)
            for g in self.gifts.values()
            if g.transaction_id
        )
        built.update(size=size, keys=keys)
    return key in built["keys"]

store.EmulatorState.submitted = submitted
"""

# argv: indexed|rebuilt, the baseline's patch, the API key.
_SERVE = """
import sys
from connectors.virtuous.emulator.app import EmulatorSettings, create_app
from core.emulation import EmulatorServer
if sys.argv[1] == "rebuilt":
    exec(sys.argv[2])
settings = EmulatorSettings.model_validate(
    {"api_keys": {sys.argv[3]: {"org": "bench"}}, "rate_limit": 10**9, "gift_batch_max_size": 100}
)
with EmulatorServer(create_app(settings)) as server:
    print(server.url, flush=True)
    sys.stdin.read()  # served until the bench closes our stdin
"""


@dataclass(frozen=True)
class Sync:
    gifts: int
    seconds: float
    peak_mib: float


def write_gifts(path: Path, count: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "amount", "email"])
        rows = (
            [f"b-{n}", f"{n % 500 + 1}.00", f"donor{n % 5000}@example.org"] for n in range(count)
        )
        writer.writerows(rows)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1"}


def sync(count: int, emulator: str) -> Sync:
    """One first run of ``count`` gifts against a fresh emulator (``indexed`` or ``rebuilt``)."""
    serve = [sys.executable, "-c", _SERVE, emulator, _REBUILT, KEY]
    with (
        tempfile.TemporaryDirectory() as folder,
        subprocess.Popen(
            serve, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env()
        ) as server,
    ):
        assert server.stdout is not None
        assert server.stdin is not None
        url = server.stdout.readline().strip()
        base = Path(folder)
        write_gifts(base / "gifts.csv", count)
        (base / "recipe.yaml").write_text(RECIPE.format(url=url, key=KEY), encoding="utf-8")
        command = [sys.executable, "-c", "from core.cli import main; main()"]
        command += ["run", str(base / "recipe.yaml"), "--state", str(base / "state.db")]
        started = time.perf_counter()
        child = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, cwd=base)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        server.stdin.close()
        if child.returncode != 0:
            msg = f"the {count:,}-gift sync exited {child.returncode}"
            raise SystemExit(msg)
    return Sync(count, seconds, usage.ru_maxrss / 1024)  # ru_maxrss: KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=25_000, help="N (time is taken at N and 4N)")
    parser.add_argument("--small", type=int, default=10_000, help="memory is compared to this")
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="memory at 4N instead of 1M")
    args = parser.parse_args()
    big = 4 * args.gifts
    ours = {n: sync(n, "indexed") for n in (args.gifts, big)}
    before = {n: sync(n, "rebuilt") for n in (args.gifts, big)}
    ratio = ours[big].seconds / ours[args.gifts].seconds
    old_ratio = before[big].seconds / before[args.gifts].seconds
    largest = big if args.quick else args.million
    small = sync(args.small, "indexed")
    large = ours[largest] if largest in ours else sync(largest, "indexed")
    growth = large.peak_mib / small.peak_mib

    print("Virtuous emulator, CSV -> virtuous.gift_transactions (batches of 100), first runs")
    for label, runs in (("indexed", ours), ("rebuilt per request (baseline)", before)):
        times = ", ".join(f"{n:,}: {r.seconds:.1f} s" for n, r in runs.items())
        print(f"  {label:31} {times}")
    met = ratio <= GOAL_RATIO
    print(
        f"  time {big:,} / {args.gifts:,}: {ratio:.2f}x vs baseline {old_ratio:.2f}x"
        f" (goal <= {GOAL_RATIO}x, linear = 4x) {'met' if met else 'NOT met'}"
    )
    met_memory = growth <= GOAL_MEMORY
    print(
        f"  peak memory {largest:,} ({large.seconds:.0f} s): {large.peak_mib:.0f} MiB"
        f" vs {args.small:,}: {small.peak_mib:.0f} MiB = {growth:.2f}x (goal <= {GOAL_MEMORY}x)"
        f" {'met' if met_memory else 'NOT met'}"
    )
    return 0 if met and met_memory else 1


if __name__ == "__main__":
    sys.exit(main())
