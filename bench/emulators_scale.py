"""Does reading N records through each emulator's list API take time linear in N?

For the Stripe, Mailchimp, Givebutter and Donorbox emulators, each served by its own process and
seeded there with N records (not timed), reads every record page by page as its connector does:

- Stripe: ``GET /v1/charges?limit=100&created[gte]=...`` on, ``starting_after`` the last one;
- Mailchimp: ``GET /3.0/lists/{id}/members?count=500&offset=...`` oldest change first, since a
  time before them all;
- Givebutter: ``GET /v1/transactions?per_page=100&page=...&sortBy=created_at``;
- Donorbox: ``GET /api/v1/donations?per_page=100&page=...&order=asc&date_from=...``;

at N and at 4N records (by default 5,000 and 20,000), and prints the time of each read. Linear
is a ratio near 4. The baseline, measured in the same run, is the same reads against the
emulators as they were at commit 728ec3b (``git archive``), which filtered and sorted everything
they held on every page request (near 16: quadratic).

Goal (issue 10): time(4N) / time(N) <= 5 for each emulator.

    .venv/bin/python bench/emulators_scale.py [--records N] [--only stripe,mailchimp,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 5.0
#: The emulators as they were before they kept their listings (and their pages' cost) in step.
BASELINE = "728ec3b"

# argv: the service, the number of records. Seeds the emulator, prints its URL, serves until
# the bench closes stdin.
_SERVE = """
import sys
from datetime import UTC, datetime, timedelta
from core.emulation import EmulatorServer

service, count = sys.argv[1], int(sys.argv[2])
if service == "stripe":
    from connectors.stripe.emulator.app import EmulatorSettings, create_app, seed_charges
    app = create_app(EmulatorSettings())
    seed_charges(app.state.store, count, spacing=60, customers=False)
elif service == "mailchimp":
    from connectors.mailchimp.emulator.app import EmulatorSettings, create_app
    app = create_app(EmulatorSettings())
    state, start = app.state.emulator, datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(count):
        moment = start + timedelta(minutes=n)
        state.create("emulator-list", f"donor{n}@donors.org", "subscribed", {}, None, moment)
elif service == "givebutter":
    from connectors.givebutter.emulator.app import EmulatorSettings, create_app
    app = create_app(EmulatorSettings(requests_per_minute=10**9))
    app.state.emulator.seed(count=count)
else:
    from connectors.donorbox.emulator.app import EmulatorSettings, create_app
    app = create_app(EmulatorSettings())
    app.state.emulator.seed(count=count)
with EmulatorServer(app) as server:
    print(server.url, flush=True)
    sys.stdin.read()
"""


def _stripe(client: httpx.Client, url: str) -> Iterator[int]:
    params: dict[str, str] = {"limit": "100", "created[gte]": "1735689600"}
    headers = {"Authorization": "Bearer sk_test_emulator"}
    while True:
        page = client.get(f"{url}/v1/charges", params=params, headers=headers).json()
        yield len(page["data"])
        if not page["has_more"]:
            return
        params["starting_after"] = page["data"][-1]["id"]


def _mailchimp(client: httpx.Client, url: str) -> Iterator[int]:
    offset, auth = 0, ("bench", "emulator-key-us1")
    while True:
        params = {
            "count": "500",
            "offset": str(offset),
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "since_last_changed": "2024-12-31T00:00:00+00:00",
        }
        got = client.get(f"{url}/3.0/lists/emulator-list/members", params=params, auth=auth)
        members = got.json()["members"]
        yield len(members)
        if len(members) < 500:
            return
        offset += len(members)


def _givebutter(client: httpx.Client, url: str) -> Iterator[int]:
    headers, number = {"Authorization": "Bearer emulator-givebutter-key"}, 1
    while True:
        params = {"per_page": "100", "page": str(number), "sortBy": "created_at"}
        page = client.get(f"{url}/v1/transactions", params=params, headers=headers).json()
        yield len(page["data"])
        if page["links"]["next"] is None:
            return
        number += 1


def _donorbox(client: httpx.Client, url: str) -> Iterator[int]:
    auth, number = ("ops@example.org", "emulator-donorbox-key"), 1
    while True:
        params = {"per_page": "100", "page": str(number), "order": "asc", "date_from": "1900-01-01"}
        rows = client.get(f"{url}/api/v1/donations", params=params, auth=auth).json()
        yield len(rows)
        if len(rows) < 100:
            return
        number += 1


READERS: dict[str, Callable[[httpx.Client, str], Iterator[int]]] = {
    "stripe": _stripe,
    "mailchimp": _mailchimp,
    "givebutter": _givebutter,
    "donorbox": _donorbox,
}


@dataclass(frozen=True)
class Read:
    records: int
    seconds: float


def read_all(service: str, count: int, tree: Path) -> Read:
    """Seed ``count`` records in a fresh emulator of ``tree`` and time reading them all."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1"}
    serve = [sys.executable, "-c", _SERVE, service, str(count)]
    with subprocess.Popen(
        serve, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tree
    ) as server:
        assert server.stdout is not None
        assert server.stdin is not None
        url = server.stdout.readline().strip()
        with httpx.Client(timeout=600) as client:
            started = time.perf_counter()
            got = sum(READERS[service](client, url))
            seconds = time.perf_counter() - started
        server.stdin.close()
    if got != count:
        msg = f"{service}: read {got:,} of {count:,} records"
        raise SystemExit(msg)
    return Read(count, seconds)


def baseline_tree(folder: Path) -> Path:
    """The project as it was at :data:`BASELINE`, unpacked in ``folder``."""
    archive = folder / "baseline.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", BASELINE], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000, help="N (timed at N and 4N)")
    parser.add_argument("--only", default=",".join(READERS), help="services, comma-separated")
    args = parser.parse_args()
    small, big = args.records, 4 * args.records
    services = [s.strip() for s in args.only.split(",") if s.strip()]
    all_met = True
    with tempfile.TemporaryDirectory() as folder:
        old = baseline_tree(Path(folder))
        for service in services:
            ours = {n: read_all(service, n, ROOT) for n in (small, big)}
            before = {n: read_all(service, n, old) for n in (small, big)}
            ratio = ours[big].seconds / ours[small].seconds
            old_ratio = before[big].seconds / before[small].seconds
            met = ratio <= GOAL_RATIO
            all_met &= met
            print(f"{service} emulator, every record read through its list API")
            for label, runs in (("now", ours), (f"as at {BASELINE} (baseline)", before)):
                times = ", ".join(f"{n:,}: {r.seconds:.2f} s" for n, r in runs.items())
                print(f"  {label:26} {times}")
            print(
                f"  {service} time {big:,} / {small:,}: {ratio:.2f}x vs baseline {old_ratio:.2f}x"
                f" (goal <= {GOAL_RATIO}x, linear = 4x) {'met' if met else 'NOT met'}"
            )
            print()
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
