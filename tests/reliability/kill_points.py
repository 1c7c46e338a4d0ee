"""Where a run can be stopped dead: named points in the code, and a CLI that SIGKILLs itself at one.

A point wraps one function: the process dies at its Nth call (before or after the call), or, for
a generator such as the source read, at its Nth item. ``python -m tests.reliability.kill_points
run RECIPE ...`` runs the CLI with the points named in ``$KILL_AT`` armed
(``point:nth[,point:nth...]``), as a power cut would stop it there. The same wrappers count
calls in process (:func:`counting`), so a test can pick an Nth that the run does reach.

Only the standard library is imported at the top: the killed process must start fast.
"""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Point:
    """A place to die: ``attribute`` of ``owner`` (a module or ``module:Class``), ``when``
    before or after the call; a generator dies after yielding its Nth item."""

    owner: str
    attribute: str
    when: str
    what: str  # what a kill there leaves, for a reader of the test ids and the report


POINTS: dict[str, Point] = {
    "read": Point("core.runner", "_incoming", "after", "mid-read: the Nth record read"),
    "mark": Point(
        "core.state.sqlite:SqliteStateStore",
        "mark_in_flight",
        "after",
        "a batch marked in flight, its request not sent",
    ),
    "sent": Point(
        "connectors.virtuous.gift_transactions:GiftTransactions",
        "_send",
        "after",
        "Virtuous processed the batch, its answer never read",
    ),
    "answered": Point(
        "core.runner:Runner", "_write", "after", "the sink's answer in hand, not committed"
    ),
    "commit": Point(
        "core.state.sqlite:SqliteStateStore", "commit", "before", "just before a commit"
    ),
    "committed": Point(
        "core.state.sqlite:SqliteStateStore", "commit", "after", "just after a commit"
    ),
    "line": Point(
        "connectors.files.jsonl_file",
        "_line",
        "before",
        "mid-batch: lines of the batch appended, not synced",
    ),
    "synced": Point(
        "connectors.files.common:AppendLog", "sync", "after", "a batch's lines on disk, uncommitted"
    ),
    "window": Point(
        "connectors.stripe.listing:CreatedWindowSource",
        "_read_window",
        "after",
        "mid-read: a window of Stripe charges listed",
    ),
    "recover": Point(
        "connectors.virtuous.gift_transactions:GiftTransactions",
        "recover",
        "after",
        "records in flight looked up in Virtuous, not committed",
    ),
    "acknowledged": Point(
        "core.serve.drain:Drainer",
        "_process",
        "before",
        "webhook events acknowledged and in the inbox, not processed",
    ),
    "drained": Point(
        "core.runner:Runner",
        "sync",
        "after",
        "webhook events in the sink and the ledger, still in the inbox",
    ),
}


def _owner(point: Point) -> Any:
    module, _, cls = point.owner.partition(":")
    found = importlib.import_module(module)
    return getattr(found, cls) if cls else found


def _wrapped(point: Point, original: Callable[..., Any], hit: Callable[[], None]) -> Any:
    """``original`` calling ``hit`` at each call (or each item it yields), before or after."""
    if inspect.isgeneratorfunction(original):

        def items(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for item in original(*args, **kwargs):
                yield item
                hit()

        return items

    def call(*args: Any, **kwargs: Any) -> Any:
        if point.when == "before":
            hit()
        result = original(*args, **kwargs)
        if point.when == "after":
            hit()
        return result

    return call


def arm(name: str, nth: int) -> None:
    """Make this process SIGKILL itself at the ``nth`` hit of the point ``name``."""
    point = POINTS[name]
    owner = _owner(point)
    calls = [0]

    def hit() -> None:
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    setattr(owner, point.attribute, _wrapped(point, getattr(owner, point.attribute), hit))


@contextmanager
def counting(names: list[str]) -> Iterator[Counter[str]]:
    """Count, in this process, how often each named point is hit while the block runs."""
    hits: Counter[str] = Counter()
    restore = []
    for name in names:
        point = POINTS[name]
        owner = _owner(point)
        original = getattr(owner, point.attribute)
        restore.append((owner, point.attribute, original))

        def hit(name: str = name) -> None:
            hits[name] += 1

        setattr(owner, point.attribute, _wrapped(point, original, hit))
    try:
        yield hits
    finally:
        for owner, attribute, original in reversed(restore):
            setattr(owner, attribute, original)


def main() -> None:
    for spec in filter(None, os.environ.get("KILL_AT", "").split(",")):
        name, _, nth = spec.partition(":")
        arm(name, int(nth))
    from core.cli import main as cli

    cli()


def child(argv: list[str], env: dict[str, str], cwd: str, output: str) -> None:
    """The body of a forked run (see ``support.killed_run``): the environment, folder and
    arguments of a fresh CLI process, stdout and stderr into ``output``.out and ``.err``."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["connector", *argv]
    sys.stdout = open(f"{output}.out", "w", encoding="utf-8")  # noqa: SIM115 (the process ends)
    sys.stderr = open(f"{output}.err", "w", encoding="utf-8")  # noqa: SIM115
    main()


if __name__ == "__main__":
    main()
