"""One self-contained HTML page of a recipe's history: inline CSS and SVG, no script, nothing
fetched, so it opens from a file or an e-mail attachment as it is.

Every number on the page carries a ``data-`` attribute naming what it counts, so a test (or a
script) can read them from the page without depending on its wording.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

from core.html_report_data import ReportData
from core.outcomes import Outcome

#: The outcomes in the order the charts stack them, with their colours (as the CLI's).
COLOURS: dict[Outcome, str] = {
    Outcome.WRITTEN: "#2e9e5b",
    Outcome.UPDATED: "#2b8cbe",
    Outcome.UNCHANGED: "#c9ced6",
    Outcome.ECHO: "#a9b0bb",
    Outcome.FILTERED: "#e3e6ea",
    Outcome.NEEDS_REVIEW: "#e8a33d",
    Outcome.INVALID: "#d9534f",
    Outcome.FAILED: "#8e1f1b",
}

# Runs and days drawn in a chart (the most recent); the tables say how many there are in all.
_CHART_RUNS = 60
_CHART_DAYS = 60
_TABLE_RUNS = 15

_CSS = """
:root { --ink:#1d2733; --muted:#5f6b7a; --line:#e3e7ec; --bg:#f5f7fa; --card:#fff;
        --accent:#2b6cb0; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:#1f3a5f; color:#fff; padding:28px 40px 68px; }
header .inner { max-width:1040px; margin:0 auto; }
header h1 { margin:0; font-size:24px; font-weight:600; letter-spacing:.2px; }
header p { margin:6px 0 0; color:#c8d6e8; font-size:13px; }
header code { color:#fff; background:rgba(255,255,255,.12); padding:1px 6px; border-radius:4px; }
main { max-width:1120px; margin:0 auto; padding:24px 40px 48px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit,minmax(160px,1fr)); gap:14px;
        margin:-44px 0 24px; }
.kpi { background:var(--card); border-radius:10px; padding:14px 16px;
       box-shadow:0 1px 3px rgba(16,24,40,.10); }
.kpi .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.6px; }
.kpi .value { font-size:26px; font-weight:650; margin-top:2px; font-variant-numeric:tabular-nums; }
.kpi .value.small { font-size:18px; }
.kpi.warn .value { color:#b7791f; } .kpi.bad .value { color:#c53030; }
section { background:var(--card); border-radius:10px; padding:18px 22px 20px; margin:0 0 18px;
          box-shadow:0 1px 3px rgba(16,24,40,.08); }
section h2 { margin:0 0 4px; font-size:17px; font-weight:600; }
section .note { margin:0 0 12px; color:var(--muted); font-size:13px; }
.two { display:grid; grid-template-columns:1fr 1fr; gap:18px; }
.two section { margin:0 0 18px; }
table { border-collapse:collapse; width:100%; font-size:13.5px; }
th { text-align:left; color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase;
     letter-spacing:.4px; border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid var(--line); padding:6px 8px; vertical-align:top; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr:last-child td { border-bottom:none; }
.legend { display:flex; flex-wrap:wrap; gap:6px 14px; margin:10px 0 0; font-size:12.5px;
          color:var(--muted); }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px;
            vertical-align:-1px; }
.pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; color:#fff; }
.bar { height:8px; border-radius:4px; background:var(--accent); min-width:2px; }
.empty { color:var(--muted); font-style:italic; margin:6px 0 0; }
.keys { color:var(--muted); font-size:12px; }
svg text { font:11px system-ui,sans-serif; fill:#5f6b7a; }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:8px; }
"""


def render(data: ReportData) -> str:
    """The whole page."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(data.recipe)}: connector report</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(data),
        "<main>",
        _kpis(data),
        _runs(data.runs),
        '<div class="two">',
        _money_by_day(data),
        _money_by_designation(data),
        "</div>",
        _dead_letters(data),
        _pending(data),
        f"<footer>made by connector report at {escape(_time(data.generated_at))} UTC"
        " from the state store alone; nothing was asked of any service</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _header(data: ReportData) -> str:
    return (
        f'<header><div class="inner"><h1>{escape(data.recipe)}</h1>'
        f"<p><code>{escape(data.source)}</code> → <code>{escape(data.sink)}</code>"
        f" · state {escape(data.state)} · {escape(_time(data.generated_at))} UTC</p></div></header>"
    )


def _kpis(data: ReportData) -> str:
    written = data.outcome_total(Outcome.WRITTEN)
    updated = data.outcome_total(Outcome.UPDATED)
    cards = [
        _kpi("runs", "runs", f"{len(data.runs):,}"),
        _kpi("written", "records written", f"{written:,}"),
        _kpi("updated", "records updated", f"{updated:,}"),
    ]
    for currency, total in sorted(data.by_currency.items()):
        cards.append(
            _kpi(f"money-{currency}", f"money {currency}", _amount(total), small=len(cards) > 3)
        )
    tone = "bad" if data.dead_letter_count else ""
    cards.append(_kpi("dead-letters", "dead letters", f"{data.dead_letter_count:,}", tone=tone))
    if data.queued:
        tone = "warn" if data.pending_count else ""
        cards.append(_kpi("pending", "pending", f"{data.pending_count:,}", tone=tone))
    return f'<div class="kpis">{"".join(cards)}</div>'


def _kpi(name: str, label: str, value: str, *, tone: str = "", small: bool = False) -> str:
    size = " small" if small else ""
    return (
        f'<div class="kpi {tone}"><div class="label">{escape(label)}</div>'
        f'<div class="value{size}" data-kpi="{escape(name)}">{escape(value)}</div></div>'
    )


# --- runs ----------------------------------------------------------------------------------


def _runs(runs: Sequence[dict[str, Any]]) -> str:
    if not runs:
        return _section("Runs over time", "", '<p class="empty">No run has been recorded yet.</p>')
    shown = runs[-_CHART_RUNS:]
    first, last = _day(runs[0]), _day(runs[-1])
    when = f"on {first}" if first == last else f"from {first} to {last}"
    note = f"{len(runs):,} run(s) {escape(when)}; each bar is a run, its records by outcome" + (
        f" (the last {len(shown)})" if len(shown) < len(runs) else ""
    )
    chart = _runs_chart(shown)
    legend = _legend(o for o in COLOURS if any(_count(r, o) for r in shown))
    table = _runs_table(runs[-_TABLE_RUNS:])
    return _section("Runs over time", note, chart + legend + table)


def _runs_chart(runs: Sequence[dict[str, Any]]) -> str:
    width, height, left, bottom = 1000, 180, 44, 22
    tallest = max((sum(_count(r, o) for o in COLOURS) for r in runs), default=0) or 1
    step = (width - left) / max(len(runs), 1)
    bar = max(min(step * 0.7, 40), 2)
    shapes = _axis(width, height, left, bottom, tallest)
    for index, run in enumerate(runs):
        x = left + index * step + (step - bar) / 2
        y = float(height - bottom)
        for outcome, colour in COLOURS.items():
            count = _count(run, outcome)
            if not count:
                continue
            h = count / tallest * (height - bottom - 10)
            y -= h
            title = f"{_day(run)} {outcome}: {count:,}"
            shapes.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{escape(title)}</title></rect>'
            )
    shapes.extend(_ends(width, height, left, _day(runs[0]), _day(runs[-1])))
    return _svg(width, height, shapes)


def _runs_table(runs: Sequence[dict[str, Any]]) -> str:
    columns = [o for o in COLOURS if any(_count(r, o) for r in runs)]
    head = "".join(f'<th class="n">{escape(str(o))}</th>' for o in columns)
    rows = []
    for run in reversed(runs):
        cells = "".join(f'<td class="n">{_count(run, o):,}</td>' for o in columns)
        stopped = run.get("stopped")
        state = (
            f' <span class="pill" style="background:#c53030" title="{escape(str(stopped))}">'
            "stopped</span>"
            if stopped
            else ""
        )
        rows.append(
            f"<tr><td>{escape(_time(str(run.get('started_at', ''))))}{state}</td>"
            f'<td class="n">{int(run.get("records_read", 0)):,}</td>{cells}'
            f'<td class="n">{float(run.get("elapsed_seconds", 0)):.1f} s</td></tr>'
        )
    caption = (
        f'<p class="note" style="margin-top:14px">the last {len(runs)} run(s), newest first</p>'
    )
    return (
        f'{caption}<table><tr><th>started (UTC)</th><th class="n">read</th>{head}'
        f'<th class="n">time</th></tr>{"".join(rows)}</table>'
    )


def _count(run: dict[str, Any], outcome: Outcome) -> int:
    return int(run.get("outcomes", {}).get(str(outcome), 0))


def _day(run: dict[str, Any]) -> str:
    return str(run.get("started_at", ""))[:10]


# --- money ---------------------------------------------------------------------------------


def _money_by_day(data: ReportData) -> str:
    if not data.by_day:
        return _section("Money by day", "", _no_money())
    charts = []
    for currency in sorted(data.by_currency):
        days = sorted((d, a) for (d, c), a in data.by_day.items() if c == currency)
        charts.append(f'<p class="note">{escape(currency)} by the day it was given</p>')
        charts.append(_days_chart(days[-_CHART_DAYS:]))
    rows = [
        f'<tr><td>{escape(day)}</td><td>{escape(currency)}</td><td class="n"'
        f' data-money-day="{escape(day)}" data-currency="{escape(currency)}">'
        f"{_amount(amount)}</td></tr>"
        for (day, currency), amount in sorted(data.by_day.items(), reverse=True)[:_TABLE_RUNS]
    ]
    table = (
        '<table><tr><th>day</th><th>currency</th><th class="n">amount</th></tr>'
        f"{''.join(rows)}</table>"
    )
    return _section("Money by day", "what the runs wrote, in major units", "".join(charts) + table)


def _days_chart(days: Sequence[tuple[str, Decimal]]) -> str:
    width, height, left, bottom = 480, 140, 52, 22
    tallest = max((a for _, a in days), default=Decimal(1)) or Decimal(1)
    step = (width - left) / max(len(days), 1)
    bar = max(min(step * 0.7, 28), 2)
    shapes = _axis(width, height, left, bottom, float(tallest))
    for index, (day, amount) in enumerate(days):
        h = float(amount / tallest) * (height - bottom - 10)
        x = left + index * step + (step - bar) / 2
        shapes.append(
            f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}"'
            f' rx="2" fill="#2b6cb0"><title>{escape(day)}: {_amount(amount)}</title></rect>'
        )
    if days:
        shapes.extend(_ends(width, height, left, days[0][0], days[-1][0]))
    return _svg(width, height, shapes)


def _money_by_designation(data: ReportData) -> str:
    if not data.by_designation:
        return _section("Money by designation", "", _no_money())
    most = max(data.by_designation.values()) or Decimal(1)
    rows = []
    ordered = sorted(data.by_designation.items(), key=lambda item: (item[0][1], -item[1]))
    for (name, currency), amount in ordered:
        share = float(amount / most) * 100 if most > 0 else 0
        label = escape(name) if name else '<span class="keys">undesignated</span>'
        rows.append(
            f"<tr><td>{label}</td><td>{escape(currency)}</td>"
            f'<td class="n" data-money-designation="{escape(name)}"'
            f' data-currency="{escape(currency)}">{_amount(amount)}</td>'
            f'<td style="width:30%"><div class="bar" style="width:{share:.0f}%"></div></td></tr>'
        )
    table = (
        '<table><tr><th>designation</th><th>currency</th><th class="n">amount</th><th></th></tr>'
        f"{''.join(rows)}</table>"
    )
    return _section("Money by designation", "each gift's funds or projects", table)


def _no_money() -> str:
    return (
        '<p class="empty">No money was written in these runs'
        " (only the amounts that a map: writes are counted).</p>"
    )


# --- dead letters and pending --------------------------------------------------------------


def _dead_letters(data: ReportData) -> str:
    if not data.dead_letters:
        body = '<p class="empty">None: every record read went through.</p>'
        return _section("Dead letters", "", body)
    rows = []
    for group in data.dead_letters:
        colour = COLOURS.get(Outcome(group.outcome), "#777")
        rows.append(
            f'<tr><td class="n" data-dead-letter-group="{escape(group.outcome)}">{group.count:,}'
            f'</td><td><span class="pill" style="background:{colour}">{escape(group.outcome)}'
            f"</span></td><td>{escape(group.field_name)}</td><td>{escape(group.reason)}"
            f'<div class="keys">{escape(", ".join(group.keys))}'
            f"{' …' if group.count > len(group.keys) else ''}</div></td></tr>"
        )
    note = (
        f"{data.dead_letter_count:,} record(s), grouped by reason;"
        " <code>connector dlq list</code> lists them. " + _dead_letters_next(data.next_steps)
    )
    table = (
        '<table><tr><th class="n">records</th><th>outcome</th><th>field</th><th>reason</th></tr>'
        f"{''.join(rows)}</table>"
    )
    return _section("Dead letters", note, table)


def _dead_letters_next(steps: Counter[str]) -> str:
    """What to do about them, as ``connector dlq list`` says: one left for a person is handled
    by hand, then resolved (sent again, it would only meet the same answer); a needs_review kept
    without what ``dlq resolve`` records is read first; the rest are retried."""
    lines = []
    if steps["resolve"]:
        lines.append(
            f"{steps['resolve']:,} left for a person, who does in the service by hand what each"
            " reason says, then <code>connector dlq resolve RECIPE KEY...</code> records it"
        )
    if steps["show"]:
        lines.append(f"{steps['show']:,} need a person to read why and act")
    if steps["retry"]:
        lines.append(f"<code>connector dlq retry</code> sends {steps['retry']:,} again")
    return "; ".join(lines)


def _pending(data: ReportData) -> str:
    if not data.queued:
        return ""  # the sink writes records themselves: nothing waits
    title = f"Pending in {data.sink.split('.')[0].capitalize()}"
    if not data.pending_count:
        return _section(title, "", '<p class="empty">Nothing waits in the sink\'s queue.</p>')
    rows = [
        f"<tr><td>{escape(p.key)}</td><td>{escape(p.sink_key)}</td>"
        f"<td>{escape(_time(p.since))}</td></tr>"
        for p in data.pending
    ]
    note = (
        f"{data.pending_count:,} record(s) written to the import, not yet seen as created"
        " (<code>connector status</code> looks them up); the oldest first"
    )
    if data.pending_held_already:
        note += (
            f". {data.pending_held_already:,} of them were in"
            f" {data.sink.split('.')[0].capitalize()} already when this state sent them (another"
            " state database had sent them): counted unchanged, not written, and not sent twice"
        )
    table = (
        "<table><tr><th>source key</th><th>sink reference</th><th>written (UTC)</th></tr>"
        f"{''.join(rows)}</table>"
    )
    return _section(title, note, table)


# --- shared pieces -------------------------------------------------------------------------


def _section(title: str, note: str, body: str) -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{note_html}{body}</section>"


def _legend(outcomes: Iterable[Outcome]) -> str:
    items = "".join(
        f'<span><i style="background:{COLOURS[o]}"></i>{escape(str(o))}</span>' for o in outcomes
    )
    return f'<div class="legend">{items}</div>'


def _axis(width: int, height: int, left: int, bottom: int, top: float) -> list[str]:
    """The base line and a top grid line labelled with the largest value."""
    base = height - bottom
    return [
        f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#cfd6de"/>',
        f'<line x1="{left}" y1="10" x2="{width}" y2="10" stroke="#eef1f4"/>',
        f'<text x="{left - 6}" y="14" text-anchor="end">{_short(top)}</text>',
        f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>',
    ]


def _ends(width: int, height: int, left: int, first: str, last: str) -> list[str]:
    """The first and last labels under a chart's bars (one when they are the same)."""
    labels = [f'<text x="{left}" y="{height - 6}">{escape(first)}</text>']
    if last != first:
        labels.append(f'<text x="{width}" y="{height - 6}" text-anchor="end">{escape(last)}</text>')
    return labels


def _svg(width: int, height: int, shapes: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' preserveAspectRatio="xMinYMin meet">{"".join(shapes)}</svg>'
    )


def _time(moment: str) -> str:
    """``2026-11-30T11:33:56+00:00`` as ``2026-11-30 11:33:56`` (every time here is UTC)."""
    return moment.replace("T", " ").removesuffix("+00:00").removesuffix(" UTC")


def _amount(amount: Decimal) -> str:
    return f"{amount:,}"


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"
