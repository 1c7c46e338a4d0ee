"""What the standing reliability suites share: the shipped recipes pointed at a test folder, seeded
inputs with the gifts they must become, what each destination holds, and the exactness check.

Every figure a suite reports is tallied in :data:`TALLY` and printed at the end of the session
(see ``tests/reliability/__init__`` and ``conftest``-free use: :func:`tally_line`).
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import multiprocessing
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import Result

from core.state import SqliteStateStore
from tests.reliability import kill_points

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
#: Every seeded choice of the suites (inputs, kill points, fault dice) derives from this.
SEED = int(os.environ.get("CONNECTOR_RELIABILITY_SEED", "20261130"))
#: The longer soak: many more kill points and fault runs, larger inputs.
SOAK = os.environ.get("CONNECTOR_SOAK") == "1"
PROJECTS = [
    {"name": "General Fund", "code": "GENERAL"},
    {"name": "Scholarships", "code": "SCHOLAR"},
    {"name": "Missions", "code": "MISSIONS"},
]
#: ISO 4217 exponents of the currencies the inputs use: the oracle for amounts.
EXPONENTS = {"usd": 2, "eur": 2, "jpy": 0, "kwd": 3}


@dataclass
class Tally:
    """Figures for RELIABILITY.md, summed over a session."""

    kills: Counter[str] = field(default_factory=Counter)  # SIGKILLs survived, per flow
    faulted: Counter[str] = field(default_factory=Counter)  # requests faulted, per scenario
    gifts_checked: int = 0
    duplicates: int = 0
    losses: int = 0


TALLY = Tally()


def rng(*parts: object) -> random.Random:
    """A random generator seeded from :data:`SEED` and ``parts`` (a flow, a case)."""
    return random.Random("-".join(map(str, (SEED, *parts))))


def major(minor: int, currency: str) -> Decimal:
    """``minor`` units of ``currency`` in major units, exactly."""
    return Decimal(minor).scaleb(-EXPONENTS[currency.lower()])


# --- inputs ---------------------------------------------------------------------------------

Money = tuple[str, Decimal]  # (currency code, amount)
NO_MONEY: Money = ("", Decimal(0))  # what a contact carries


def donations_csv(path: Path, count: int, seed: object) -> dict[str, Money]:
    """A platform's CSV export in the shipped recipes' layout: ``count`` donations in several
    currencies, about one in eight failed (no gift), one in twenty listed twice. Returns the
    gifts it must become."""
    dice = rng("csv", seed)
    rows, gifts = [], {}
    for n in range(1, count + 1):
        currency = dice.choice(list(EXPONENTS))
        cents = dice.randint(100, 5_000_000)
        status = "failed" if dice.random() < 0.125 else "succeeded"
        row = {
            "donation_id": f"d-{n}",
            "donor_name": f"Donor{n} Example",
            "donor_email": f"donor{n % 17}@example.org",
            "amount_cents": str(cents),
            "currency": currency,
            "donated_at": str(1_735_689_600 + 3600 * n),
            "status": status,
            "fund": dice.choice(["general", "scholarships", "missions", "other"]),
        }
        rows.append(row)
        if status == "succeeded":
            gifts[row["donation_id"]] = (currency.upper(), major(cents, currency))
    # An export repeats a few rows unchanged (a donation listed twice): still one gift each.
    rows += [dict(row) for row in dice.sample(rows, max(1, count // 20))]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return gifts


@functools.cache
def stripe_start() -> int:
    """Where the Stripe inputs start: midnight UTC three days before the session began (so a
    run lists a few windows of charges, not years of empty ones)."""
    return (int(time.time()) // 86_400 - 3) * 86_400


def stripe_charges(store: Any, count: int, seed: object) -> dict[str, Money]:
    """``count`` charges from :func:`stripe_start`, 1.5 hours apart, in several currencies,
    some failed; the gifts due."""
    dice, start = rng("stripe", seed), stripe_start()
    gifts = {}
    for n in range(count):
        currency = dice.choice(list(EXPONENTS))
        status = "failed" if dice.random() < 0.1 else "succeeded"
        charge = store.seed_charge(
            {
                "amount": dice.randint(100, 5_000_000),
                "currency": currency,
                "status": status,
                "created": start + min(5400, 200_000 // count) * n,
                "metadata": {"designation": dice.choice(["general", "missions", "scholarships"])},
                "description": "Donation",
                "billing_details": {"name": f"Donor{n} Example", "email": f"d{n}@example.org"},
            }
        )
        if status == "succeeded":
            gifts[charge["id"]] = (currency.upper(), major(charge["amount"], currency))
    return gifts


# --- recipes: the shipped ones, pointed at the test's folder ----------------------------------


def shipped(name: str, folder: Path, **replacements: str) -> Path:
    """``recipes/<name>.yaml`` written into ``folder``, each key of ``replacements`` replaced
    by its value (the recipe must still hold it: a changed recipe fails loudly here)."""
    text = (RECIPES / f"{name}.yaml").read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"{name}.yaml no longer holds {old!r}"
        text = text.replace(old, new)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def csv_to_virtuous(folder: Path, batch: int) -> Path:
    return shipped(
        "csv-donations-to-virtuous-gifts",
        folder,
        **{
            "path: data/donations.csv": "path: donations.csv",
            "batch_size: 100": f"batch_size: {batch}",
        },
    )


def csv_to_jsonl(folder: Path, batch: int) -> Path:
    return shipped(
        "csv-donations-to-jsonl",
        folder,
        **{
            "path: data/donations.csv": "path: donations.csv",
            "path: ../out/gifts.jsonl": "path: out/gifts.jsonl",
            "if_exists: overwrite": f"if_exists: overwrite\n    batch_size: {batch}",
        },
    )


def stripe_to_virtuous(folder: Path, batch: int, page: int = 10) -> Path:
    return shipped(
        "stripe-charges-to-virtuous-gifts",
        folder,
        **{
            "expand_customer: true": (
                f"expand_customer: true\n    start: {stripe_start()}\n    page_size: {page}"
                "\n    window_days: 2"
            ),
            "batch_size: 100": f"batch_size: {batch}",
        },
    )


# --- what the destinations hold ---------------------------------------------------------------


def _holding(virtuous: Any) -> list[dict[str, Any]]:
    """The transactions the Virtuous emulator accepted and holds (pending an import, or set
    aside as needing an update), from its control plane. The suites never run an import."""
    state = virtuous.state()
    return [*state["pending"], *state["needsUpdate"]]


def virtuous_held(virtuous: Any) -> list[tuple[str, Money]]:
    """Every gift transaction Virtuous holds, as (transactionSource/transactionId, money)."""
    held = []
    for item in _holding(virtuous):
        if item["kind"] != "gift":
            continue
        payload = item["payload"]  # keys lowercased, as Virtuous binds them
        money = (str(payload["currencycode"]), Decimal(str(payload["amount"])))
        held.append((f"{item['transactionSource']}/{item['transactionId']}", money))
    return held


def contacts_held(virtuous: Any) -> list[tuple[str, Money]]:
    """Every contact transaction Virtuous holds, as (referenceSource/referenceId, no money)."""
    return [
        (f"{p['payload'].get('referencesource')}/{p['payload'].get('referenceid')}", NO_MONEY)
        for p in _holding(virtuous)
        if p["kind"] == "contact"
    ]


def jsonl_held(path: Path) -> list[tuple[str, Money]]:
    """Every line of the output file, as (transactionSource/transactionId, money)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [
        (
            f"{r['transactionSource']}/{r['transactionId']}",
            (r["currencyCode"], Decimal(r["amount"])),
        )
        for r in lines
    ]


# --- running --------------------------------------------------------------------------------


def run_json(invoke: Callable[..., Result], recipe: Path, *args: str) -> dict[str, Any]:
    """One run through the CLI in process; its JSON report. Any exit but 0/1 fails the test."""
    result = invoke("run", recipe, "--json", *args)
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@dataclass(frozen=True)
class Ended:
    """How a run in a child process ended: its exit code (-9: killed) and what it printed."""

    returncode: int
    stdout: str
    stderr: str


# Killed runs fork from a server that has imported everything a run needs (tests.reliability.warm)
# and holds no thread: each starts in milliseconds, as a fresh `connector` process would.
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["tests.reliability.warm"])


def killed_run(recipe: Path, kills: Iterable[tuple[str, int]], *args: str) -> Ended:
    """``connector run RECIPE --json ARGS`` in a child process armed to SIGKILL itself at each
    (point, nth) of :mod:`tests.reliability.kill_points`."""
    env = {**os.environ, "KILL_AT": ",".join(f"{name}:{nth}" for name, nth in kills)}
    output = str(recipe.parent / f".run-{next(_runs)}")
    argv = ["run", str(recipe), "--json", *args]
    process = _FORKS.Process(target=kill_points.child, args=(argv, env, str(recipe.parent), output))
    process.start()
    process.join(120)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError(f"a run of {recipe.name} did not end within 120 s")
    read = lambda suffix: Path(output + suffix).read_text(encoding="utf-8")  # noqa: E731
    return Ended(process.exitcode, read(".out"), read(".err"))


_runs = itertools.count(1)


@dataclass
class Ledger:
    """What a recipe's state holds: ledger keys, dead letters, records in flight."""

    keys: list[str]
    dead_letters: list[Any]
    in_flight: list[Any]


def ledger(recipe: Path, name: str) -> Ledger:
    path = recipe.parent / ".connector" / "state.db"
    if not path.exists():
        return Ledger([], [], [])
    store = SqliteStateStore(path)
    try:
        return Ledger(
            [e.key for e in store.ledger_entries(name)],
            store.dead_letters(name),
            store.in_flight(name),
        )
    finally:
        store.close()


# --- the exactness check --------------------------------------------------------------------


def money_of(gifts: Iterable[Money]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for currency, amount in gifts:
        if not currency:
            continue  # no money (a contact)
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def reported_money(reports: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    """The money of ``reports``, summed by currency."""
    return money_of(
        (currency, Decimal(amount)) for r in reports for currency, amount in r["money"].items()
    )


def reported(reports: Iterable[dict[str, Any]], outcome: str) -> int:
    return sum(r["outcomes"][outcome] for r in reports)


def as_held(wanted: dict[str, Money], source: str) -> dict[str, Money]:
    """The gifts ``wanted`` (by transactionId) as a destination holds them: by source/id."""
    return {f"{source}/{key}": money for key, money in wanted.items()}


def assert_held_exactly(held: list[tuple[str, Money]], expected: dict[str, Money]) -> None:
    """Each expected gift (by source/id) held once, with its money; nothing else held.
    Tallies the duplicates and losses it finds."""
    counts = Counter(key for key, _ in held)
    TALLY.gifts_checked += len(expected)
    TALLY.duplicates += sum(n - 1 for n in counts.values() if n > 1)
    TALLY.losses += len(set(expected) - set(counts))
    twice = sorted(key for key, n in counts.items() if n > 1)
    lost = sorted(set(expected) - set(counts))
    strays = sorted(set(counts) - set(expected))
    assert (twice, lost, strays) == ([], [], []), "(held twice, lost, held but not due)"
    assert dict(held) == expected  # every amount and currency as the source said


def untold(wanted: dict[str, Money], told: Iterable[str]) -> dict[str, Money]:
    """The wanted gifts whose writes no report could tell (a killed run committed them)."""
    done = set(told)
    return {key: money for key, money in wanted.items() if key not in done}


def tally_line() -> str:
    t = TALLY
    kills = ", ".join(f"{flow} {n}" for flow, n in sorted(t.kills.items())) or "none"
    faults = sum(t.faulted.values())
    return (
        f"reliability: SIGKILLs survived: {sum(t.kills.values())} ({kills}); requests faulted:"
        f" {faults} over {len(t.faulted)} scenario(s); gifts and contacts checked:"
        f" {t.gifts_checked};"
        f" duplicates: {t.duplicates}; losses: {t.losses}"
    )
