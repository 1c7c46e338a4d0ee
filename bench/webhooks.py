"""How fast does ``connector serve`` acknowledge and process webhooks; is its memory flat?

Starts ``connector serve`` (one process) on a ``virtuous.webhook`` recipe that writes each gift to
a JSON Lines file, then sends a burst of N signed GiftCreate deliveries over 32 keep-alive
connections at once, from a small raw HTTP/1.1 client (so the client, on the same cores, costs
as little as possible). It measures:

* acknowledged per second: 200 answers (each one the signature verified and the event committed
  to the durable inbox, synced) over the burst's duration; and per CPU-second the server used
  meanwhile (its workers draining the inbox at the same time included), which is the rate on one
  core of its own, whatever else runs on the machine (the client runs on the same cores);
* the time to acknowledge each delivery (request written -> answer read), p50 and p99;
* processed per second: from the first delivery to the last record in the file and an empty
  inbox (through the recipe's map, ledger and sink);
* the server's peak memory (VmHWM) after N events and after 4N in a second server: flat means
  the second is no more than 1.25x the first.

Goals (issue 11): >= 1,000 events/s acknowledged on one core (per CPU-second of the server),
p99 < 50 ms, memory flat.

    .venv/bin/python bench/webhooks.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOAL_ACK_PER_SECOND = 1000
GOAL_P99_MS = 50
GOAL_MEMORY_RATIO = 1.25
CONNECTIONS = 32
SECRET = "bench-webhook-secret"

RECIPE = """\
version: 1
name: gifts-hooks
source:
  use: virtuous.webhook
  with: {secret: "${BENCH_WEBHOOK_SECRET}", events: [GiftCreate]}
map:
  id: record.id
  amount: record.amount
  contact: record.contactId
  date: record.giftDate
sink:
  use: file.jsonl
  with: {path: gifts.jsonl}
"""


def delivery(n: int) -> bytes:
    """One signed GiftCreate delivery, as a whole HTTP/1.1 request."""
    gift = {
        "id": 500_000 + n,
        "contactId": 1000 + n % 997,
        "amount": 10 + n % 90,
        "giftDate": "2026-03-01",
        "modifiedDateTimeUtc": "2026-03-01T10:00:00",
    }
    body = json.dumps({"event": "GiftCreate", "gift": gift}).encode()
    signed = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    head = (
        "POST /hooks/gifts-hooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nX-Virtuous-Signature: {signed}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Server:
    """``connector serve`` on a free port, in a directory of its own."""

    def __init__(self, directory: Path) -> None:
        (directory / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
        env = {
            **os.environ,
            "BENCH_WEBHOOK_SECRET": SECRET,
            "CONNECTOR_LOCK_DIR": str(directory / "locks"),
        }
        self.directory = directory
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/connector"), "serve", "recipe.yaml", "--port", "0"],
            cwd=directory,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        found = re.search(r"http://([\d.]+):(\d+)", line)
        if found is None:
            self.process.kill()
            sys.exit(f"connector serve did not start: {line}{self.process.stderr.read()}")
        self.host, self.port = found.group(1), int(found.group(2))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="utf-8")
        utime, stime = fields.rsplit(")", 1)[1].split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def peak_memory_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) / 1024 if found else float("nan")

    def written(self) -> int:
        path = self.directory / "gifts.jsonl"
        if not path.exists():
            return 0
        with path.open("rb") as handle:
            return sum(1 for _ in handle)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


async def _connection(
    server: Server, requests: list[bytes], latencies: list[float], failures: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if b" 200 " not in status:
                failures.append(status.decode().strip())
    finally:
        writer.close()


async def burst(server: Server, count: int) -> tuple[float, list[float], list[str]]:
    """Send ``count`` deliveries over the connections at once: (seconds, latencies, failures)."""
    requests = [delivery(n) for n in range(count)]
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(server, requests[i::CONNECTIONS], latencies, failures)
            for i in range(CONNECTIONS)
        )
    )
    return time.perf_counter() - start, latencies, failures


def wait_processed(server: Server, count: int, timeout: float = 600) -> float:
    """When every event is in the file (monotonic seconds)."""
    deadline = time.monotonic() + timeout
    while server.written() < count:
        if time.monotonic() > deadline:
            sys.exit(f"only {server.written()} of {count} events processed in {timeout:.0f} s")
        time.sleep(0.02)
    return time.perf_counter()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Figures:
    acknowledged: float  # per second
    per_cpu_second: float  # acknowledged per CPU-second of the server
    p50_ms: float
    p99_ms: float
    processed: float  # per second
    peak_mb: float


def run(count: int) -> Figures:
    """One server, one burst of ``count`` deliveries."""
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as folder:
        server = Server(Path(folder))
        try:
            start, cpu = time.perf_counter(), server.cpu_seconds()
            seconds, latencies, failures = asyncio.run(burst(server, count))
            cpu = server.cpu_seconds() - cpu
            if failures:
                sys.exit(f"{len(failures)} deliveries not acknowledged, e.g. {failures[0]}")
            done = wait_processed(server, count)
            memory = server.peak_memory_mb()
        finally:
            server.stop()
    return Figures(
        count / seconds,
        count / max(cpu, 1e-3),
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
        count / (done - start),
        memory,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events in the first burst")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"connector serve, one process; {CONNECTIONS} connections; load average {load:.1f}")
    runs = {n: run(n) for n in (args.events, 4 * args.events)}
    for n, figures in runs.items():
        print(
            f"  {n:,} events: {figures.acknowledged:,.0f}/s acknowledged"
            f" ({figures.per_cpu_second:,.0f} per CPU-second of the server),"
            f" {figures.processed:,.0f}/s processed; p50 {figures.p50_ms:.1f} ms,"
            f" p99 {figures.p99_ms:.1f} ms; peak {figures.peak_mb:.0f} MB"
        )
    small, big = runs.values()
    one_core = min(small.per_cpu_second, big.per_cpu_second)
    p99 = max(small.p99_ms, big.p99_ms)
    ratio = big.peak_mb / small.peak_mb
    print(
        f"  acknowledged on one core: {one_core:,.0f} events per CPU-second"
        f" (goal >= {GOAL_ACK_PER_SECOND:,}/s: {_verdict(one_core >= GOAL_ACK_PER_SECOND)})"
    )
    print(
        f"  time to acknowledge under the burst: p99 {p99:.1f} ms"
        f" (goal < {GOAL_P99_MS} ms: {_verdict(p99 < GOAL_P99_MS)})"
    )
    print(
        f"  peak memory at {4 * args.events:,} events / at {args.events:,}: {ratio:.2f}x"
        f" (goal <= {GOAL_MEMORY_RATIO}x: {_verdict(ratio <= GOAL_MEMORY_RATIO)})"
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
