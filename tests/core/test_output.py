"""Output for machines and people: no wrapping off a terminal, -v/-q after the command, our own
request lines at -vv, progress with rate and time left, --json where a script reads it."""

from __future__ import annotations

import json
import logging
import re

import pytest

from core.outcomes import Outcome
from core.output import progress_line
from core.report import RunReport
from core.state import Batch, DeadLetter, open_state
from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import KEY, serving

RECIPE = """
version: 1
name: charges
source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
map:
  id: record.id
  amount: record.amount | minor_to_major(record.currency)
sink: {use: file.jsonl, with: {path: out.jsonl}}
tests:
  - name: maps a charge
    input: {id: ch_1, amount: 2500, currency: usd}
    expect: {id: ch_1, amount: "25.00"}
  - name: a wrong expectation
    input: {id: ch_2, amount: 100, currency: usd}
    expect: {id: ch_2, amount: "2.00"}
"""

GIFTS = """
version: 1
name: gifts
source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
map:
  transactionSource: "'Test'"
  transactionId: record.id
  amount: "'10.00'"
  giftDate: "'2025-03-01'"
  giftType: "'Credit'"
  contact: {firstname: "'Ada'", lastname: "'Lovelace'", email: "'ada@example.org'"}
sink:
  use: virtuous.gift_transactions
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def test_off_a_terminal_a_long_message_stays_on_one_line(write_recipe, invoke, tmp_path) -> None:
    bad = {"id": "d1", "amount": 1, "currency": "x" + "Y" * 150}
    write_jsonl(tmp_path / "in.jsonl", [bad])
    result = invoke("run", write_recipe(RECIPE))
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.lstrip().startswith("invalid")]
    # A CliRunner's output is no terminal: nothing is wrapped at 80 columns.
    assert line.endswith("(in 'record.amount | minor_to_major(record.currency)')")
    assert len(line) > 120


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbosity_flags_are_taken_before_or_after_the_command(
    write_recipe, invoke, tmp_path, where
) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": "d1", "amount": 1, "currency": "usd"}])
    recipe = write_recipe(RECIPE)
    for flag in ("-v", "-q", "--verbose", "--quiet"):
        args = (flag, "run", recipe) if where == "before" else ("run", recipe, flag)
        result = invoke(*args)
        assert result.exit_code == 0, result.output


def test_vv_logs_our_request_lines_and_not_httpcore(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": "g-1"}, {"id": "g-2"}])
    with serving(monkeypatch):
        result = invoke("run", write_recipe(GIFTS), "-vv")
    logging.getLogger().handlers.clear()  # the CLI's handler writes to this test's stderr only
    assert result.exit_code == 0, result.output
    line = re.compile(
        r"Virtuous POST http://127\.0\.0\.1:\d+/api/v2/Gift/Transactions -> 200 in [\d.]+s,"
        r" budget [\d,]+ of 5,000 left"
    )
    assert line.search(result.output), result.output
    assert "httpcore" not in result.output
    assert "connect_tcp" not in result.output
    assert KEY not in result.output


def test_progress_shows_rate_percentage_and_time_left() -> None:
    report = RunReport(recipe="gifts", records_read=250)
    report.counts[Outcome.WRITTEN] = 240
    known = progress_line(report, elapsed=5.0, total=1000).plain
    assert "250 of 1,000 read (25%)" in known
    assert "50/s" in known
    assert "about 15 s left" in known
    assert "written: 240" in known
    unknown = progress_line(report, elapsed=5.0, total=None).plain
    assert "250 read" in unknown
    assert "50/s" in unknown
    assert "left" not in unknown


def test_test_and_state_show_print_json(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": "d1", "amount": 1, "currency": "usd"}])
    recipe = write_recipe(RECIPE)
    tested = invoke("test", recipe, "--json")
    assert tested.exit_code == 1
    body = json.loads(tested.stdout)
    assert (body["passed"], body["total"]) == (1, 2)
    assert [t["passed"] for t in body["tests"]] == [True, False]
    assert invoke("run", recipe).exit_code == 0
    shown = json.loads(invoke("state", "show", recipe, "--json").stdout)
    assert shown["recipe"] == "charges"
    assert shown["ledger"] == {"records": 1, "outcomes": {"written": 1}}
    assert shown["dead_letters"] == 0


def test_a_run_into_a_file_counts_no_requests(write_recipe, invoke, tmp_path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": "ch_1", "amount": 2500, "currency": "usd"}])
    recipe = write_recipe(RECIPE)
    result = invoke("run", recipe, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"] == {"sent": 0, "minimum": 0}
    (tmp_path / "out.jsonl").unlink()
    assert "requests" not in invoke("run", recipe, "--state", str(tmp_path / "again.db")).stdout


def test_dlq_list_names_the_next_command_for_each_kind_of_dead_letter(
    write_recipe, invoke, tmp_path
) -> None:
    """A change the sink cannot make is applied by hand, then resolved; a refund in doubt waits
    for a person, who reads why; a refused record is retried."""
    recipe = write_recipe(RECIPE)
    letters = [
        DeadLetter(
            "changed",
            Outcome.NEEDS_REVIEW,
            "changed since it was written",
            None,
            {},
            1,
            digest="d1",
        ),
        DeadLetter("in doubt", Outcome.NEEDS_REVIEW, "look for it by hand", None, {}),
        DeadLetter("refused", Outcome.INVALID, "amount: not a number", "amount", {}, digest="d2"),
    ]
    store = open_state(tmp_path / ".connector" / "state.db")
    try:
        store.commit("charges", Batch(dead_letters=letters))
    finally:
        store.close()
    listed = json.loads(invoke("dlq", "list", recipe, "--json").stdout)
    assert {row["key"]: row["next"] for row in listed} == {
        "changed": f"connector dlq resolve {recipe} changed",
        "in doubt": f"connector dlq show {recipe} 'in doubt'",
        "refused": f"connector dlq retry {recipe}",
    }
    text = invoke("dlq", "list", recipe, "--state", tmp_path / ".connector" / "state.db").stdout
    target = f"{recipe} --state {tmp_path / '.connector' / 'state.db'}"
    assert f"then `connector dlq resolve {target} KEY...` records it" in text
    assert f"1 need a person to read why and act: `connector dlq show {target} KEY`" in text
    assert f"1 to send again: `connector dlq retry {target}`" in text
