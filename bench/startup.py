"""How long `connector` takes to start: `--version` and `validate`, against `python -c pass`.

Each round runs every command once, in a rotating order, in fresh processes of the same
Python (the virtual environment's); a command's figure is the median over the rounds of its time
divided by the baseline's time in the same round, so a machine that slows down mid-run slows both.

Goals (issue 10): ``connector --version`` <= 4x and ``connector validate`` <= 8x ``python -c
pass``. ``validate`` is timed on the demo recipe (CSV -> Virtuous gifts, placeholder secrets)
and on CSV -> JSON Lines, a recipe that reaches no service.

    .venv/bin/python bench/startup.py [--rounds N] [--checkout DIR]

``--checkout`` measures the code of another checkout (say an unpacked ``git archive`` of an older
commit) with this environment's Python, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "python -c pass"
#: label: (the command's arguments, the goal as a multiple of the baseline)
CASES = {
    "--version": (["--version"], 4.0),
    "validate (CSV -> Virtuous)": (
        ["validate", "recipes/csv-donations-to-virtuous-gifts.yaml"],
        8.0,
    ),
    "validate (CSV -> JSONL)": (["validate", "recipes/csv-donations-to-jsonl.yaml"], 8.0),
}
# The demo recipe's secret: validate resolves every variable, and reaches no service.
PLACEHOLDERS = {"VIRTUOUS_API_KEY": "bench-placeholder-key"}


def connector() -> list[str]:
    """The console script's own two lines, run by this Python: what `connector` executes."""
    return [sys.executable, "-c", "import sys; from core.cli import main; sys.exit(main())"]


def commands() -> dict[str, list[str]]:
    runs = {BASELINE: [sys.executable, "-c", "pass"]}
    runs.update({label: [*connector(), *args] for label, (args, _) in CASES.items()})
    return runs


def timed(command: Sequence[str], checkout: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        msg = f"{' '.join(command[-2:])} exited {done.returncode}: {said}"
        raise SystemExit(msg)
    return elapsed


def measure(checkout: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds per command per round; one unrecorded round first warms the disk cache and
    writes the bytecode caches, which an installed package has (pip compiles it): a shell with
    PYTHONDONTWRITEBYTECODE set would otherwise compile every module of the project each time."""
    env = {**os.environ, **PLACEHOLDERS, "PYTHONPATH": str(checkout)}
    env.pop("CONNECTOR_TRACE_PLUGINS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    runs = commands()
    times: dict[str, list[float]] = {label: [] for label in runs}
    labels = list(runs)
    for index in range(rounds + 1):
        shift = index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            elapsed = timed(runs[label], checkout, env)
            if index:
                times[label].append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=21, help="paired rounds (default 21)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the code to measure")
    args = parser.parse_args(argv)

    times = measure(args.checkout.resolve(), args.rounds)
    base = times[BASELINE]
    print(f"{args.rounds} paired rounds, medians; Python {sys.version.split()[0]}")
    print(f"  {BASELINE:<38} {statistics.median(base) * 1000:7.1f} ms")
    verdicts = []
    for label, (_, goal) in CASES.items():
        ratio = statistics.median(t / b for t, b in zip(times[label], base, strict=True))
        met = ratio <= goal
        verdicts.append(met)
        print(
            f"  {'connector ' + label:<38} {statistics.median(times[label]) * 1000:7.1f} ms"
            f"  {ratio:5.1f}x {BASELINE}  (goal <= {goal:g}x: {'met' if met else 'MISSED'})"
        )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
