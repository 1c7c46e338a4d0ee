"""How the CLI shows runs, tests, plugins, state and dead letters (rich)."""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.live import Live
from rich.table import Table
from rich.text import Text

from core import record_paths
from core.console import console_for
from core.hints import dead_letter_step
from core.http.redact import redact_text
from core.outcomes import Outcome
from core.state import DeadLetter, StateStore

if TYPE_CHECKING:
    from core.recipe import Recipe
    from core.recipe_tests import CaseResult
    from core.report import RunReport
    from core.runner import Runner


def interactive() -> bool:
    """Whether a person watches stderr (a live progress line is for them only)."""
    return errors.is_terminal


console = console_for()
errors = console_for(stderr=True)

_STYLE = {
    Outcome.WRITTEN: "green",
    Outcome.UPDATED: "cyan",
    Outcome.UNCHANGED: "dim",
    Outcome.FILTERED: "dim",
    Outcome.ECHO: "dim",
    Outcome.INVALID: "red",
    Outcome.FAILED: "red",
    Outcome.NEEDS_REVIEW: "yellow",
}


@contextlib.contextmanager
def progress(runner: Runner, *, enabled: bool) -> Iterator[None]:
    """A live line on the terminal: records read, outcomes, and any wait for a rate limit."""
    if not enabled:
        yield
        return
    with Live(_ProgressLine(runner), console=errors, refresh_per_second=8):
        yield


class _ProgressLine:
    """Re-rendered at every refresh, so a wait for the rate limit shows while it lasts."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.started = time.monotonic()

    def __rich__(self) -> Text:
        elapsed = time.monotonic() - self.started
        return progress_line(self.runner.report, elapsed, self.runner.expected())


def progress_line(report: RunReport, elapsed: float, total: int | None) -> Text:
    """``recipe: 1,200 of 5,000 read (24%)  310/s  about 12 s left  written: 1,100 ...``"""
    read = report.records_read
    line = Text(f"{report.recipe}: {read:,}", style="bold")
    if total:
        line.append(f" of {total:,} read ({min(read / total, 1):.0%})", style="bold")
    else:
        line.append(" read", style="bold")
    rate = read / elapsed if elapsed > 0 else 0.0
    if rate:
        line.append(f"  {rate:,.0f}/s")
        if total and total > read:
            line.append(f"  about {_duration((total - read) / rate)} left")
    for outcome, count in report.counts.items():
        line.append(f"  {outcome}: {count:,}", style=_STYLE[outcome])
    if report.waiting:
        line.append(f"  ⏳ {report.waiting}", style="yellow")
    return line


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``: as precise as a person needs to plan a wait."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def print_report(report: RunReport, recipe_path: Path | str = "RECIPE") -> None:
    title = f"{report.recipe}{' (dry run: nothing written)' if report.dry_run else ''}"
    if report.stopped:
        title += " (stopped before the end: what it wrote is counted below)"
    console.print(title, style="bold", markup=False)
    table = Table(show_header=False)
    table.add_row("records read", f"{report.records_read:,}")
    for outcome in Outcome:
        if report.counts.get(outcome):
            table.add_row(Text(str(outcome), style=_STYLE[outcome]), f"{report.counts[outcome]:,}")
    for currency, total in report.totals().items():
        table.add_row(f"amount {currency or '(no currency)'}", f"{total:,}")
    if report.requests_sent or report.requests_minimum:
        table.add_row("requests", _requests(report))
    if report.waits:
        table.add_row(Text("rate-limit waits", style="yellow"), f"{report.waits:,}")
    table.add_row("time", f"{report.elapsed_seconds:.2f} s")
    console.print(table)
    for problem in report.problems:
        where = f" [{problem.field}]" if problem.field else ""
        reason = redact_text(problem.reason)
        errors.print(f"  {problem.outcome} {problem.key}{where}: {reason}", markup=False)
    if report.failed and report.dry_run:
        errors.print(
            f"{report.failed:,} record(s) would not go through, for the reasons above"
            f" (a dry run keeps no dead letters: `connector run {recipe_path}` would)",
            markup=False,
        )
    elif report.failed:
        _attention_hints(report, recipe_path)
    for line in report.missing_paths:
        errors.print(line, markup=False, soft_wrap=True)
    if report.missing_paths:
        errors.print(f"  {record_paths.ADVICE}", markup=False, soft_wrap=True)
    if report.dead_letters_waiting:
        errors.print(
            f"{report.dead_letters_waiting:,} dead-lettered record(s) not sent: unchanged since"
            " the service refused them; change them, or `connector dlq retry` sends them again",
            markup=False,
        )


def _attention_hints(report: RunReport, recipe_path: Path | str) -> None:
    """What to do about the records that did not go through: one left for a person is handled
    in the service by hand, then resolved (sent again, it would only meet the same answer: a
    change the sink cannot make found changed again, a partial refund found partial); the rest
    are retried."""
    for_person = report.counts.get(Outcome.NEEDS_REVIEW, 0)
    retried = report.failed - for_person
    if retried:
        errors.print(
            f"{retried:,} record(s) need attention: `connector dlq list {recipe_path}`"
            f" shows them, `connector dlq retry {recipe_path}` sends them again",
            markup=False,
        )
    if report.to_apply:
        errors.print(
            f"{report.to_apply:,} record(s) changed after they were written, and the sink cannot"
            " update them: apply each change in the service by hand (`connector dlq list"
            f" {recipe_path}` shows them), then `connector dlq resolve {recipe_path} KEY...`"
            " records it",
            markup=False,
        )
    if for_person - report.to_apply:
        errors.print(
            f"{for_person - report.to_apply:,} record(s) need a person, who does in the service"
            " what each reason above says; then `connector dlq resolve"
            f" {recipe_path} KEY...` records it, and the next run leaves it alone",
            markup=False,
        )


def print_payloads(payloads: Sequence[dict[str, Any]]) -> None:
    """The payloads a dry run would send, as JSON, secrets masked."""
    for number, payload in enumerate(payloads, start=1):
        console.print(f"payload {number} of {len(payloads)}:", style="bold", markup=False)
        console.print(redact_text(json.dumps(payload, indent=2, default=str)), markup=False)


def _requests(report: RunReport) -> str:
    """``12 (minimum 10)``: what the run spent of the service's budget, against the fewest
    requests that could have carried what it sent."""
    return f"{report.requests_sent:,} (minimum {report.requests_minimum:,})"


def print_test_results(recipe: Recipe, results: Sequence[CaseResult], *, as_json: bool) -> None:
    if as_json:
        cases = [{"name": r.name, "passed": r.passed, "problems": r.problems} for r in results]
        passed = sum(r.passed for r in results)
        body = {"recipe": recipe.name, "passed": passed, "total": len(results), "tests": cases}
        _print_json(body)
        return
    for result in results:
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        console.print(mark, Text(result.name), markup=True)
        for line in result.problems:
            # A mapping error or a diff may quote a value the recipe interpolated: a secret.
            console.print(f"    {redact_text(line)}", markup=False)
    if not results:
        errors.print(
            f"{recipe.name}: no tests, so nothing was checked: add tests: to {recipe.path.name},"
            " each an input record and the fields it must map to (expect:) or filtered: true",
            markup=False,
        )
        return
    passed = sum(r.passed for r in results)
    console.print(f"{recipe.name}: {passed} of {len(results)} test(s) passed")


def print_state(recipe: str, store: StateStore, *, as_json: bool) -> None:
    entries = store.ledger_entries(recipe)
    counts: dict[str, int] = {}
    for entry in entries:
        counts[str(entry.outcome)] = counts.get(str(entry.outcome), 0) + 1
    if as_json:
        body = {
            "recipe": recipe,
            "state": store.location,
            "cursor": store.cursor(recipe),
            "ledger": {"records": len(entries), "outcomes": counts},
            "dead_letters": len(store.dead_letters(recipe)),
        }
        _print_json(body)
        return
    console.print(f"recipe:       {recipe}")
    console.print(f"state:        {redact_text(store.location)}", markup=False)
    console.print(f"cursor:       {json.dumps(store.cursor(recipe), default=str)}")
    console.print(f"ledger:       {len(entries):,} record(s) {counts or ''}")
    console.print(f"dead letters: {len(store.dead_letters(recipe)):,}")


def print_dead_letters(letters: Sequence[DeadLetter], target: str, *, as_json: bool) -> None:
    """``target`` is what the next commands name: the recipe (and ``--state``), as
    :func:`core.hints.hint_target` gives it."""
    if as_json:
        rows = [
            {
                "key": d.key,
                "outcome": str(d.outcome),
                "reason": redact_text(d.reason),
                "field": d.field,
                "attempts": d.attempts,
                "updated_at": d.updated_at,
                "next": _next_command(d, target),
            }
            for d in letters
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table("key", "outcome", "field", "reason", "attempts", "when", "next")
    for d in letters:
        reason = redact_text(d.reason)
        when = d.updated_at
        step = f"dlq {dead_letter_step(d)}"
        table.add_row(d.key, str(d.outcome), d.field or "", reason, str(d.attempts), when, step)
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")
    for line in _next_steps(letters, target):
        console.print(line, markup=False, soft_wrap=True)


def _next_command(letter: DeadLetter, target: str) -> str:
    step = dead_letter_step(letter)
    key = "" if step == "retry" else f" {shlex.quote(letter.key)}"
    return f"connector dlq {step} {target}{key}"


def _next_steps(letters: Sequence[DeadLetter], target: str) -> list[str]:
    steps = Counter(dead_letter_step(d) for d in letters)
    lines = []
    if steps["resolve"]:
        lines.append(
            f"{steps['resolve']:,} left for a person, who does in the service by hand what each"
            f" reason says (`connector dlq show {target} KEY` shows one with its record),"
            f" then `connector dlq resolve {target} KEY...` records it"
        )
    if steps["show"]:
        lines.append(
            f"{steps['show']:,} need a person to read why and act:"
            f" `connector dlq show {target} KEY` shows each with its record"
        )
    if steps["retry"]:
        lines.append(
            f"{steps['retry']:,} to send again: `connector dlq retry {target}` (an invalid one"
            " after fixing its record or the recipe)"
        )
    return lines


def print_dead_letter(letter: DeadLetter) -> None:
    console.print(f"key:      {letter.key}\noutcome:  {letter.outcome}", markup=False)
    reason = redact_text(letter.reason)
    console.print(f"field:    {letter.field or ''}\nreason:   {reason}", markup=False)
    console.print(f"attempts: {letter.attempts}\nwhen:     {letter.updated_at}", markup=False)
    console.print_json(json.dumps(letter.record, default=str))


def _print_json(body: Any) -> None:
    """One JSON document on stdout, secrets masked (a test's diff or a URL may quote one)."""
    print(redact_text(json.dumps(body, indent=2, default=str)))
