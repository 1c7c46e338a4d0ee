"""How much does the exactly-once ledger cost per record? CSV -> JSONL against a fair floor.

Runs ``recipes/csv-donations-to-jsonl.yaml``'s mapping over N generated donations, in this
process (start-up is bench/startup.py's), twice: a first run (every record written) and a
re-run (every record unchanged). The floor does the same work by hand, measured in the same
run: ``csv.DictReader``, the same mapping through the same transform functions, a payload
digest (``json.dumps`` sorted + sha256) and a SQLite ledger of (key, digest) committed every
1,000 records, a re-run skipping every record whose digest is in the ledger.

Goals (issue 10): first run <= 1.5x the floor, re-run <= 1.3x, state <= 120 bytes per record.

    .venv/bin/python bench/csv_to_jsonl.py [--records N] [--repeat K (default 5)]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.plugins import load_plugins  # noqa: E402
from core.recipe import load_recipe  # noqa: E402
from core.runner import Runner  # noqa: E402
from core.state import open_state  # noqa: E402
from core.transforms import (  # noqa: E402
    first_name,
    last_name,
    lower,
    minor_to_major,
    to_int,
    unix_to_date,
    upper,
)

GOAL_FIRST = 1.5
GOAL_RERUN = 1.3
GOAL_BYTES = 120
FUNDS = {"general": "GENERAL", "scholarships": "SCHOLAR", "missions": "MISSIONS"}
NAMES = ["Ada Lovelace", "Grace Brewster Hopper", "Alan Turing", "Katherine Johnson", "Linus"]
COLUMNS = "donation_id,donor_name,donor_email,amount_cents,currency,donated_at,status,fund"


def make_csv(path: Path, count: int, seed: int = 7) -> int:
    """Write ``count`` donations; return how many succeeded (the records the ledger keeps)."""
    rng = random.Random(seed)
    kept = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS.split(","))
        for i in range(count):
            name = rng.choice(NAMES)
            status = "succeeded" if rng.random() < 0.97 else "failed"
            kept += status == "succeeded"
            writer.writerow(
                [
                    f"d-{i:07d}",
                    name,
                    f"{name.split()[0].upper()}{i}@Example.org",
                    rng.randrange(100, 1_000_000),
                    rng.choice(["usd"] * 8 + ["jpy", "kwd"]),
                    1_700_000_000 + i * 37,
                    status,
                    rng.choice([*FUNDS, "other"]),
                ]
            )
    return kept


def recipe_text(csv_path: Path, out_path: Path) -> str:
    text = (ROOT / "recipes" / "csv-donations-to-jsonl.yaml").read_text(encoding="utf-8")
    text = text.replace("path: data/donations.csv", f"path: {csv_path}")
    text = text.replace("path: ../out/gifts.jsonl", f"path: {out_path}")
    return text.split("\ntests:")[0] + "\n"


# --- the floor ------------------------------------------------------------------------------


def floor_map(row: dict[str, str]) -> dict[str, Any] | None:
    if row["status"] != "succeeded":
        return None
    return {
        "transactionSource": "CSV Import",
        "transactionId": row["donation_id"],
        "amount": minor_to_major(to_int(row["amount_cents"]), row["currency"]),
        "currencyCode": upper(row["currency"]),
        "giftDate": unix_to_date(to_int(row["donated_at"])),
        "giftType": "Credit",
        "designation": FUNDS.get(row["fund"], "GENERAL"),
        "contact": {
            "firstname": first_name(row["donor_name"]),
            "lastname": last_name(row["donor_name"]),
            "email": lower(row["donor_email"]),
        },
    }


def floor_run(csv_path: Path, out_path: Path, db_path: Path) -> None:
    """Exactly once by hand: a (key, digest) ledger looked up and committed per 1,000 records."""
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS ledger (key TEXT PRIMARY KEY, digest TEXT NOT NULL)")
    with csv_path.open(newline="", encoding="utf-8") as source, out_path.open("a") as out:
        chunk: list[tuple[str, str, dict[str, Any]]] = []
        for row in csv.DictReader(source):
            payload = floor_map(row)
            if payload is None:
                continue
            text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
            chunk.append((row["donation_id"], hashlib.sha256(text.encode()).hexdigest(), payload))
            if len(chunk) >= 1000:
                _floor_commit(db, out, chunk)
        _floor_commit(db, out, chunk)
    db.close()


def _floor_commit(db: sqlite3.Connection, out: Any, chunk: list[tuple[str, str, Any]]) -> None:
    marks = ",".join("?" * len(chunk))
    query = f"SELECT key, digest FROM ledger WHERE key IN ({marks})"  # noqa: S608
    known = dict(db.execute(query, [key for key, _, _ in chunk]).fetchall())
    changed = [(key, digest) for key, digest, _ in chunk if known.get(key) != digest]
    if changed:
        written = {key for key, _ in changed}
        out.writelines(
            json.dumps(payload, default=str) + "\n" for key, _, payload in chunk if key in written
        )
        out.flush()
        os.fsync(out.fileno())
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO ledger VALUES (?, ?)", changed)
        db.execute("COMMIT")
    chunk.clear()


# --- ours -----------------------------------------------------------------------------------


def our_run(recipe_path: Path, db_path: Path) -> None:
    registry = load_plugins(load_entrypoints=False)[1]
    recipe = load_recipe(recipe_path, registry)
    state = open_state(db_path)
    try:
        Runner(recipe, state).run()
    finally:
        state.close()


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(count: int, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in ("ours1", "ours2", "floor1", "floor2")}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = folder / "donations.csv"
        written = make_csv(csv_path, count)
        recipe_path = folder / "recipe.yaml"
        recipe_path.write_text(recipe_text(csv_path, folder / "ours.jsonl"), encoding="utf-8")
        for _ in range(repeat):  # paired: each round runs both, so drift hits both alike
            for name in ("ours", "floor"):
                db = folder / f"{name}.db"
                for leftover in folder.glob(f"{name}.*"):
                    leftover.unlink()
                shutil.rmtree(folder / "locks", ignore_errors=True)
                work = (
                    partial(our_run, recipe_path, db)
                    if name == "ours"
                    else partial(floor_run, csv_path, folder / "floor.jsonl", db)
                )
                for run in ("1", "2"):
                    times[name + run].append(timed(work))
                sizes[name] = db.stat().st_size
    result = {k: statistics.median(v) for k, v in times.items()}
    # The ratios are the medians of each round's own ratio: a round runs both, so a machine
    # that slows down for a while (other work on the cores) slows both sides of that ratio.
    for run in ("1", "2"):
        paired = zip(times["ours" + run], times["floor" + run], strict=True)
        result["ratio" + run] = statistics.median(ours / floor for ours, floor in paired)
    result["ours_bytes"] = sizes["ours"] / written
    result["floor_bytes"] = sizes["floor"] / written
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("CONNECTOR_DISABLE_PLUGIN_AUTOLOAD", "1")
    r = measure(args.records, args.repeat)
    first, rerun = r["ratio1"], r["ratio2"]
    rows = [
        ("first run", f"{r['ours1']:.2f} s", f"floor {r['floor1']:.2f} s", first, GOAL_FIRST),
        ("re-run", f"{r['ours2']:.2f} s", f"floor {r['floor2']:.2f} s", rerun, GOAL_RERUN),
    ]
    print(f"CSV -> JSONL, {args.records:,} rows, medians of {args.repeat} paired runs")
    ok = True
    for label, ours, floor, ratio, goal in rows:
        met = ratio <= goal
        ok &= met
        print(
            f"  {label:10} {ours:>9} vs {floor:>15}: {ratio:.2f}x (goal <= {goal}x) "
            f"{'met' if met else 'NOT met'}"
        )
    met = r["ours_bytes"] <= GOAL_BYTES
    ok &= met
    print(
        f"  state      {r['ours_bytes']:.0f} bytes/record vs floor {r['floor_bytes']:.0f}"
        f" (goal <= {GOAL_BYTES}) {'met' if met else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
