"""Run every benchmark and write bench/RESULTS.md: the machine, each command, its figures with the
baselines measured in the same run, each goal and whether it is met.

Each benchmark stays runnable on its own; this only runs them one after the other (never two at
once: they would slow each other), shows their output as it comes, and gathers their verdict
lines (``... (goal <= 3x: met)``, ``... (goal <= 1.5x) NOT met``, ``MISSED  no 429``) into a
summary. The load average is recorded before and after each benchmark: figures from a busy
machine are marked as such.

    .venv/bin/python bench/run_all.py [--full] [--output bench/RESULTS.md]

By default the long scenarios are cut down so that the whole run takes about five minutes on two
quiet cores (rates per record need no million records); ``--full`` runs every benchmark at its
own defaults, the minute-long rate windows and the million-gift memory run included.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A verdict line: "... (goal <= 3x: met)", "... (goal <= 1.5x) NOT met" or "met     no 429".
_INSIDE = re.compile(r"\(goal [^)]*: (met|MISSED)\)")
_AFTER = re.compile(r"\(goal [^)]*\)\s*(met|NOT met|MISSED)\b")
_LEADING = re.compile(r"^(met|MISSED)\s+(\S.*)$")


@dataclass(frozen=True)
class Bench:
    script: str
    args: tuple[str, ...] = ()
    why: str = ""

    def command(self) -> list[str]:
        return [sys.executable, f"bench/{self.script}", *self.args]

    def shown(self) -> str:
        return " ".join([".venv/bin/python", f"bench/{self.script}", *self.args])


@dataclass
class Outcome:
    bench: Bench
    output: list[str] = field(default_factory=list)
    returncode: int = 0
    seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def verdicts(self) -> list[tuple[str, bool]]:
        """(figure, met) for each goal line, a budget goal prefixed with its scenario."""
        found, section = [], ""
        for index, line in enumerate(self.output):
            text = line.strip()
            if text and (index == 0 or not self.output[index - 1].strip()):
                section = text  # the heading of a block: a budget scenario
            inline, leading = _INSIDE.search(text) or _AFTER.search(text), _LEADING.match(text)
            if inline:
                found.append((text, inline.group(1) == "met"))
            elif leading:
                found.append((f"{section}: {leading.group(2)}", leading.group(1) == "met"))
        return found


#: Arguments that keep the default run to about five minutes, and why they do not bias a figure.
QUICK = {
    "mapping.py": (
        ("--records", "30000"),
        "30,000 records instead of 100,000: the figures are rates per record",
    ),
    "budget.py": (("--quick",), "--quick: without the scenario of a one-minute window"),
    "csv_to_jsonl.py": (
        ("--records", "30000"),
        "30,000 rows instead of 100,000: the figures are ratios to a floor run on the same rows",
    ),
    "emulator_scale.py": (
        ("--quick",),
        "--quick: peak memory at 4N gifts instead of a million",
    ),
    "scale.py": (
        ("--quick",),
        "--quick: 4,800 gifts per worker count instead of 9,600: rates against the windows' bound",
    ),
    "webhooks.py": (
        ("--events", "3000"),
        "bursts of 3,000 and 12,000 events instead of 10,000 and 40,000: rates per event",
    ),
}


def benches(full: bool) -> list[Bench]:
    """Every script in bench/ that runs as a program; cut down unless ``full``."""
    scripts = sorted(
        path.name
        for path in (ROOT / "bench").glob("*.py")
        if path.name != Path(__file__).name and "__main__" in path.read_text(encoding="utf-8")
    )
    if full:
        return [Bench(name) for name in scripts]
    return [Bench(name, *QUICK[name]) if name in QUICK else Bench(name) for name in scripts]


def run(bench: Bench) -> Outcome:
    outcome = Outcome(bench, load_before=os.getloadavg())
    print(f"\n$ {bench.shown()}", flush=True)
    start = time.perf_counter()
    with subprocess.Popen(
        bench.command(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            outcome.output.append(line.rstrip("\n"))
    outcome.returncode = process.returncode
    outcome.seconds = time.perf_counter() - start
    outcome.load_after = os.getloadavg()
    return outcome


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """What ``nproc`` prints: the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "core", "connectors")
    return f"{head} with uncommitted changes" if dirty else head


def busy(outcomes: list[Outcome], nproc: int) -> bool:
    """Busy: more than half the cores were in use, on average, over a minute of the run."""
    return max(max(o.load_before[0], o.load_after[0]) for o in outcomes) > nproc / 2


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def report(outcomes: list[Outcome], started: str, total: float, *, full: bool) -> str:
    nproc = cores()
    how = (
        "`make bench BENCH_ARGS=--full` (`bench/run_all.py --full`: every benchmark at its"
        " defaults)"
        if full
        else "`make bench` (`bench/run_all.py`: long scenarios cut down, see each benchmark's"
        " arguments; `--full` runs them all)"
    )
    lines = [
        "# Benchmark results",
        "",
        f"Written by {how} on {started}, commit {commit()}, in {total / 60:.1f} minutes.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| cores (`nproc`) | {nproc} |",
        f"| CPU | {cpu_model()} |",
        f"| Python | {platform.python_version()} ({sys.executable}) |",
        f"| system | {platform.system()} {platform.release()} |",
        f"| load average (1 / 5 / 15 min) at the start | {_load(outcomes[0].load_before)} |",
        f"| load average at the end | {_load(outcomes[-1].load_after)} |",
        "",
    ]
    if busy(outcomes, nproc):
        lines += [
            f"**The machine was busy** (a load average above {nproc / 2:g} on {nproc} cores):"
            " other work shared the cores, so absolute times are inflated and noisy. Each"
            " figure is compared with a baseline measured in the same run, which bounds the"
            " damage, but run `make bench` again on a quiet machine before quoting any figure.",
            "",
        ]
    lines += ["## Goals", "", "| benchmark | figure | goal |", "|---|---|---|"]
    for outcome in outcomes:
        verdicts = outcome.verdicts()
        if not verdicts:
            state = f"exited {outcome.returncode} without a verdict"
            lines.append(f"| {outcome.bench.script} | (no figures) | **{state}** |")
        for figure, met in verdicts:
            cell, verdict = figure.replace("|", "\\|"), "met" if met else "**MISSED**"
            lines.append(f"| {outcome.bench.script} | `{cell}` | {verdict} |")
    lines.append("")
    for outcome in outcomes:
        lines += [
            f"## {outcome.bench.script}",
            "",
            f"`{outcome.bench.shown()}`: {outcome.seconds:.0f} s, exit {outcome.returncode},"
            f" load average {_load(outcome.load_before)} before,"
            f" {_load(outcome.load_after)} after.",
            "",
        ]
        if outcome.bench.why:
            lines += [f"Arguments: {outcome.bench.why}.", ""]
        lines += ["```", *outcome.output, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="every benchmark at its defaults")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    start = time.perf_counter()
    outcomes = [run(bench) for bench in benches(args.full)]
    text = report(outcomes, started, time.perf_counter() - start, full=args.full)
    args.output.write_text(text, encoding="utf-8")

    verdicts = [met for o in outcomes for _, met in o.verdicts()]
    silent = [o.bench.script for o in outcomes if not o.verdicts()]
    print(f"\n{sum(verdicts)} of {len(verdicts)} goals met; written to {args.output}")
    if silent:
        print(f"no verdict from {', '.join(silent)}: see {args.output}")
    return 1 if silent else 0


if __name__ == "__main__":
    sys.exit(main())
