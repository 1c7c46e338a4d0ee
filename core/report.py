"""What a run did: counts by outcome, money totals, the records that need attention."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from typing import Any

from core.outcomes import Outcome
from core.transforms import currency_exponent

# The report lists this many problem records; the rest are in the dead-letter queue.
_PROBLEMS_SHOWN = 20

# Money is summed and shown exactly: the default context keeps 28 digits and would round a
# larger total (then fail to show it to its currency's places). An exact sum needs no more
# digits than the amounts it adds span.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


@dataclass
class Problem:
    key: str
    outcome: Outcome
    reason: str
    field: str | None


@dataclass
class RunReport:
    """Built up while a recipe runs; ``to_dict()`` is what ``connector run --json`` prints."""

    recipe: str
    dry_run: bool = False
    state: str = ""
    records_read: int = 0
    counts: Counter[Outcome] = field(default_factory=Counter)
    money: dict[str, Decimal] = field(default_factory=dict)
    #: the same money by (day, currency, designation), for ``connector report``
    money_detail: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    waiting: str | None = None
    waits: int = 0  # how often a rate limit (the service's or our budget's) made the run wait
    #: requests the sink sent (retries and look-ups included), and the fewest that could have
    #: carried the records it had to send (one per full batch)
    requests_sent: int = 0
    requests_minimum: int = 0
    #: dead letters read again with the payload the sink refused: not sent; `dlq retry` sends
    dead_letters_waiting: int = 0
    #: of the needs_review ones: changed after they were written, and the sink cannot update;
    #: a person applies each change, then `dlq resolve` records it (`dlq retry` cannot help)
    to_apply: int = 0
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str | None = None
    #: record paths the recipe reads that every record read lacked (see core.record_paths)
    missing_paths: list[str] = field(default_factory=list)
    #: why the run stopped before the end (a fatal error, an interrupt); what it wrote still counts
    stopped: str | None = None
    _start: float = field(default_factory=time.monotonic, repr=False)
    elapsed_seconds: float = 0.0

    def count(self, outcome: Outcome) -> None:
        self.counts[outcome] += 1

    def add_money(self, currency: str, amount: Decimal) -> None:
        self.money[currency] = _EXACT.add(self.money.get(currency, Decimal(0)), amount)

    def add_money_detail(
        self,
        day: str,
        currency: str,
        amount: Decimal,
        designations: Sequence[tuple[str, Decimal]] = (),
    ) -> None:
        """``amount`` of a gift of ``day``, split among the funds it names; what they leave
        counts as undesignated ("")."""
        rest = amount
        for name, part in designations:
            self._detail(day, currency, name, part)
            rest = _EXACT.subtract(rest, part)
        if rest > 0 or not designations:
            self._detail(day, currency, "", rest)

    def add_undesignated(self, day: str, currency: str, amounts: Iterable[Decimal]) -> None:
        """Gifts of one day and currency with no fund named, at once: the same totals as
        adding each of them (an exact sum does not depend on the order), for two additions."""
        with localcontext(_EXACT):
            total = sum(amounts, Decimal(0))
        self.add_money(currency, total)
        self._detail(day, currency, "", total)

    def _detail(self, day: str, currency: str, designation: str, amount: Decimal) -> None:
        key = (day, currency, designation)
        self.money_detail[key] = _EXACT.add(self.money_detail.get(key, Decimal(0)), amount)

    def totals(self) -> dict[str, Decimal]:
        """The money totals by currency, each to its currency's decimal places (JPY 0, KWD 3)."""
        return {
            currency: _to_places(currency, total) for currency, total in sorted(self.money.items())
        }

    def add_problem(self, key: str, outcome: Outcome, reason: str, field: str | None) -> None:
        if len(self.problems) < _PROBLEMS_SHOWN:
            self.problems.append(Problem(key, outcome, reason, field))

    def note_wait(self, message: str) -> None:
        self.waiting = message
        self.waits += 1

    def finish(self) -> None:
        self.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.elapsed_seconds = round(time.monotonic() - self._start, 3)
        self.waiting = None

    @property
    def failed(self) -> int:
        return sum(n for outcome, n in self.counts.items() if not outcome.succeeded)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.stopped is None and not self.missing_paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "stopped": self.stopped,
            "records_read": self.records_read,
            "outcomes": {str(o): self.counts.get(o, 0) for o in Outcome},
            "money": {currency: str(total) for currency, total in self.totals().items()},
            "money_detail": [
                {"day": day, "currency": currency, "designation": name, "amount": str(amount)}
                for (day, currency, name), amount in sorted(self.money_detail.items())
            ],
            "problems": [
                {"key": p.key, "outcome": str(p.outcome), "reason": p.reason, "field": p.field}
                for p in self.problems
            ],
            "rate_limit_waits": self.waits,
            "requests": {"sent": self.requests_sent, "minimum": self.requests_minimum},
            "dead_letters_waiting": self.dead_letters_waiting,
            "to_apply": self.to_apply,
            "missing_paths": self.missing_paths,
            "state": self.state,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed_seconds": self.elapsed_seconds,
        }


def _to_places(currency: str, total: Decimal) -> Decimal:
    """``9545.0`` USD as ``9545.00``; never rounds a digit away (``0.005`` USD stays)."""
    try:
        step = Decimal(1).scaleb(-currency_exponent(currency))
    except ValueError:  # no currency, or not a code: shown as summed
        return total
    rounded = total.quantize(step, context=_EXACT)
    return rounded if rounded == total else total
