"""How fast is a compiled recipe mapping? Compared with hand-written Python and Jinja templates.

Maps N Stripe-charge-like records with the mapping from design.md's illustrative recipe three ways:

(a) ``compile_mapping`` of the recipe's ``map:``;
(b) the same mapping written by hand in Python, calling the same transform functions;
(c) the same fields rendered one by one with pre-compiled Jinja2 templates, the transforms
    registered as filters: what template-based integration frameworks do per record.

Goals (design.md, key decision 4): (a) within 3x of (b), and at least 30x faster than (c).

    .venv/bin/python bench/mapping.py [--records N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jinja2  # noqa: E402

from core.mapping import compile_mapping  # noqa: E402
from core.transforms import (  # noqa: E402
    builtin_transforms,
    first_name,
    last_name,
    minor_to_major,
    unix_to_date,
    upper,
)

RECIPE_MAP: dict[str, Any] = {
    "transactionSource": "'Stripe'",
    "transactionId": "record.id",
    "amount": "record.amount | minor_to_major(record.currency)",
    "currencyCode": "record.currency | upper",
    "giftDate": "record.created | unix_to_date",
    "giftType": "'Credit'",
    "contact": {
        "firstname": "record.billing_details.name | first_name",
        "lastname": "record.billing_details.name | last_name",
        "email": "record.billing_details.email",
    },
}

JINJA_MAP: dict[str, Any] = {
    "transactionSource": "Stripe",
    "transactionId": "{{ record.id }}",
    "amount": "{{ record.amount | minor_to_major(record.currency) }}",
    "currencyCode": "{{ record.currency | upper }}",
    "giftDate": "{{ record.created | unix_to_date }}",
    "giftType": "Credit",
    "contact": {
        "firstname": "{{ record.billing_details.name | first_name }}",
        "lastname": "{{ record.billing_details.name | last_name }}",
        "email": "{{ record.billing_details.email }}",
    },
}

FIRST = """Ada Grace Alan Katherine Dorothy Mary Linus Barbara Edsger Frances Donald Margaret John
Radia Tim Hedy Claude Sophie Dennis Ken Shafi Leslie Anita Jean Ida Martin Ludwig Juan Maria Chen
Priya Kwame Amara Yuki Olga Mateo Fatima Noah Zara""".split()  # noqa: SIM905 - a word list
LAST = """Lovelace Hopper Turing Johnson Vaughan Keller Torvalds Liskov Dijkstra Allen Knuth
Hamilton McCarthy Perlman Berners-Lee Lamarr Shannon Wilson Ritchie Thompson Goldwasser Lamport
Borg Sammet Rhodes King Cruz Garcia Nguyen Okafor Tanaka Ivanova Rossi Haddad Smith Brown""".split()  # noqa: SIM905
MIDDLE = ["A.", "B.", "Marie", "Lee", "Ann", "J.", "Luther"]
CURRENCIES = ["usd"] * 8 + ["jpy", "kwd"]


def make_records(count: int, seed: int) -> list[dict[str, Any]]:
    """Stripe charges with the spread of names real donors have: middle names, titles, suffixes."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        shape = rng.random()
        if shape < 0.15:
            name = f"{first} {rng.choice(MIDDLE)} {last}"
        elif shape < 0.20:
            name = f"{rng.choice(['Dr.', 'Mrs.', 'Rev.'])} {first} {last}"
        elif shape < 0.23:
            name = f"{first} {last} {rng.choice(['Jr.', 'III', 'PhD'])}"
        elif shape < 0.25:
            name = f"{first} {rng.choice(['van', 'de la', 'von'])} {last}"
        else:
            name = f"{first} {last}"
        records.append(
            {
                "id": f"ch_{index:08d}",
                "object": "charge",
                "amount": rng.choice([500, 1000, 2500, 5000, 10000]) + rng.randrange(100),
                "currency": rng.choice(CURRENCIES),
                "created": 1735689600 + rng.randrange(365 * 86400),
                "status": "succeeded" if rng.random() < 0.95 else "failed",
                "billing_details": {"name": name, "email": f"{first}.{last}@example.org".lower()},
                "metadata": {"designation": rng.choice(["general", "scholarships", "building"])},
            }
        )
    return records


def hand_written(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a developer would write instead of a recipe."""
    billing = record.get("billing_details") or {}
    name = billing.get("name")
    currency = record.get("currency")
    return {
        "transactionSource": "Stripe",
        "transactionId": record.get("id"),
        "amount": minor_to_major(record.get("amount"), currency),
        "currencyCode": upper(currency),
        "giftDate": unix_to_date(record.get("created")),
        "giftType": "Credit",
        "contact": {
            "firstname": first_name(name),
            "lastname": last_name(name),
            "email": billing.get("email"),
        },
    }


def jinja_mapping() -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Per-field templates, compiled once; each field of each record is one render."""
    env = jinja2.Environment(autoescape=False)  # JSON payloads, not HTML
    env.filters.update(builtin_transforms())

    def templates(block: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: templates(value) if isinstance(value, Mapping) else env.from_string(value)
            for key, value in block.items()
        }

    compiled = templates(JINJA_MAP)

    def render(block: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: render(t, record) if isinstance(t, Mapping) else t.render(record=record)
            for key, t in block.items()
        }

    return lambda record: render(compiled, record)


def best_rate(mapper: Callable[[Mapping[str, Any]], Any], records: list[dict[str, Any]]) -> float:
    """Records per second, best of three runs over all the records."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for record in records:
            mapper(record)
        best = min(best, time.perf_counter() - start)
    return len(records) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    records = make_records(args.records, args.seed)
    compiled = compile_mapping(RECIPE_MAP, transforms=builtin_transforms())
    jinja = jinja_mapping()

    sample = records[:1000]
    mismatches = [r["id"] for r in sample if compiled(r) != hand_written(r)]
    if mismatches:
        print(f"compiled and hand-written mappings disagree on {mismatches[:5]}")
        return 1

    print(f"{len(records):,} records; best of 3 runs each")
    rates = {
        "compiled": best_rate(compiled, records),
        "hand-written": best_rate(hand_written, records),
        "jinja": best_rate(jinja, records),
    }
    for label, rate in rates.items():
        print(f"  {label:<13} {rate:>12,.0f} records/s  {1e6 / rate:8.2f} µs/record")

    slowdown = rates["hand-written"] / rates["compiled"]
    speedup = rates["compiled"] / rates["jinja"]
    close = slowdown <= 3
    fast = speedup >= 30
    verdict = {True: "met", False: "MISSED"}
    print(
        f"compiled vs hand-written: {slowdown:.2f}x the time per record"
        f"  (goal <= 3x: {verdict[close]})"
    )
    print(f"compiled vs jinja:        {speedup:.1f}x faster  (goal >= 30x: {verdict[fast]})")
    return 0 if close and fast else 1


if __name__ == "__main__":
    sys.exit(main())
