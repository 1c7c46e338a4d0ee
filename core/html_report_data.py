"""What ``connector report`` shows, gathered from the state store alone (no service is asked).

The runs and the money come from the reports each run kept (:meth:`StateStore.record_run`); the
dead letters and what waits in the service's queue come from the dead-letter queue and the
ledger, as they are now.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.hints import dead_letter_step
from core.http.redact import redact_text
from core.outcomes import Outcome
from core.sink import Sink
from core.state import StateStore

# A reason's particulars (a quoted value, an address, a number) differ from record to record;
# without them, the reasons of one cause read the same and group together.
_PARTICULARS = re.compile(r"'[^']*'|\"[^\"]*\"|\S+@\S+|\b\d[\d.,:/-]*\b")

# Pending records listed by key (all are counted).
PENDING_SHOWN = 20


@dataclass
class ReasonGroup:
    outcome: str
    field_name: str
    reason: str  # the first reason of the group, as it was given
    count: int = 0
    keys: list[str] = field(default_factory=list)


@dataclass
class Pending:
    key: str
    sink_key: str
    since: str


@dataclass
class ReportData:
    recipe: str
    source: str
    sink: str
    state: str
    generated_at: str
    runs: list[dict[str, Any]]
    #: (day, currency) -> amount, (designation, currency) -> amount, currency -> amount
    by_day: dict[tuple[str, str], Decimal]
    by_designation: dict[tuple[str, str], Decimal]
    by_currency: dict[str, Decimal]
    dead_letters: list[ReasonGroup]
    dead_letter_count: int
    #: of those, how many need each ``dlq`` command next (see core.hints.dead_letter_step)
    next_steps: Counter[str]
    pending: list[Pending]
    pending_count: int
    #: of those, the ones the sink held already when this state sent them (another state did)
    pending_held_already: int
    #: whether the sink has a queue to wait in (Virtuous's import); else nothing is pending
    queued: bool

    def outcome_total(self, outcome: Outcome) -> int:
        """``outcome`` summed over every run kept."""
        return sum(int(run.get("outcomes", {}).get(str(outcome), 0)) for run in self.runs)


def gather(
    recipe: str,
    source: str,
    sink: type[Sink],
    store: StateStore,
    generated_at: str,
) -> ReportData:
    runs = store.runs(recipe)
    by_day, by_designation, by_currency = _money(runs)
    letters = store.dead_letters(recipe)
    entries = store.ledger_entries(recipe)
    waiting = [e for e in entries if sink.pending(e.sink_key)]
    pending = [
        Pending(redact_text(e.key), redact_text(e.sink_key or ""), e.updated_at) for e in waiting
    ]
    return ReportData(
        recipe=recipe,
        source=source,
        sink=sink.name,
        state=redact_text(store.location),
        generated_at=generated_at,
        runs=runs,
        by_day=by_day,
        by_designation=by_designation,
        by_currency=by_currency,
        dead_letters=_group(letters),
        dead_letter_count=len(letters),
        next_steps=Counter(dead_letter_step(letter) for letter in letters),
        pending=sorted(pending, key=lambda p: p.since)[:PENDING_SHOWN],
        pending_count=len(pending),
        pending_held_already=sum(e.outcome is Outcome.UNCHANGED for e in waiting),
        queued=sink.pending.__func__ is not Sink.pending.__func__,  # type: ignore[attr-defined]
    )


def _money(
    runs: list[dict[str, Any]],
) -> tuple[dict[tuple[str, str], Decimal], dict[tuple[str, str], Decimal], dict[str, Decimal]]:
    by_day: dict[tuple[str, str], Decimal] = {}
    by_designation: dict[tuple[str, str], Decimal] = {}
    by_currency: dict[str, Decimal] = {}
    for run in runs:
        for line in run.get("money_detail") or []:
            amount = Decimal(str(line["amount"]))
            currency = str(line["currency"]) or "(no currency)"
            _add(by_day, (str(line["day"]), currency), amount)
            _add(by_designation, (str(line["designation"]), currency), amount)
            _add(by_currency, currency, amount)
    return by_day, by_designation, by_currency


def _add(totals: dict[Any, Decimal], key: Any, amount: Decimal) -> None:
    totals[key] = totals.get(key, Decimal(0)) + amount


def _group(letters: list[Any]) -> list[ReasonGroup]:
    """Dead letters by outcome, field and reason (its particulars left out), largest first."""
    groups: dict[tuple[str, str, str], ReasonGroup] = {}
    for letter in letters:
        reason = redact_text(letter.reason)
        pattern = _PARTICULARS.sub("…", reason)
        key = (str(letter.outcome), letter.field or "", pattern)
        group = groups.setdefault(key, ReasonGroup(key[0], key[1], reason))
        group.count += 1
        if len(group.keys) < 3:
            group.keys.append(redact_text(letter.key))
    return sorted(groups.values(), key=lambda g: (-g.count, g.outcome, g.reason))
