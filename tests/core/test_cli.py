"""The command line, as a user types it: exit codes, summaries, state and the DLQ."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core.state import SqliteStateStore
from tests.conftest import write_jsonl

RECIPE = """
version: 1
name: cli-demo
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  id: record.id
  amount: record.cents | minor_to_major(record.currency)
  currency: record.currency | upper
sink:
  use: file.csv
  with: {path: out.csv}
tests:
  - input: {id: a, cents: 250, currency: usd}
    expect: {id: a, amount: "2.50", currency: USD}
"""


def _records(tmp: Path, *bad: str) -> None:
    rows = [{"id": f"r{i}", "cents": 100 * i, "currency": "eur"} for i in range(1, 4)]
    for row in rows:
        if row["id"] in bad:
            row["cents"] = "many"
    write_jsonl(tmp / "in.jsonl", rows)


def test_run_prints_a_json_report_and_exits_0(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path)
    result = invoke("run", write_recipe(RECIPE), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["outcomes"]["written"] == 3
    assert report["money"] == {"EUR": "6.00"}
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "id,amount,currency"


def test_run_summary_and_second_run(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path)
    recipe = write_recipe(RECIPE)
    assert "written" in invoke("run", recipe).output
    second = invoke("run", recipe, "--json")
    assert json.loads(second.stdout)["outcomes"]["unchanged"] == 3


def test_dead_letters_exit_1_and_are_listed(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path, "r2")
    recipe = write_recipe(RECIPE)
    result = invoke("run", recipe)
    assert result.exit_code == 1
    listed = invoke("dlq", "list", recipe, "--json")
    rows = json.loads(listed.stdout)
    assert [(r["key"], r["field"]) for r in rows] == [("r2", "amount")]
    shown = invoke("dlq", "show", recipe, "r2")
    assert '"many"' in shown.stdout


def test_a_missing_input_file_exits_3_naming_it(write_recipe, invoke, tmp_path) -> None:
    result = invoke("run", write_recipe(RECIPE))
    assert result.exit_code == 3
    assert f"input file not found: {tmp_path / 'in.jsonl'}" in result.stderr.replace("\n", "")
    assert not (tmp_path / "out.csv").exists()  # the sink never opened


def test_an_invalid_recipe_exits_2_and_writes_nothing(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path)
    result = invoke("run", write_recipe(RECIPE.replace("file.csv", "file.xlsx")))
    assert result.exit_code == 2
    assert "unknown sink 'file.xlsx'" in result.stderr
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / ".connector").exists()


def test_validate_reports_each_recipe(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path)
    good = write_recipe(RECIPE, "good.yaml")
    bad = write_recipe(RECIPE.replace("name: cli-demo", "name: cli-demo\nnope: 1"), "bad.yaml")
    result = invoke("validate", good, bad)
    assert result.exit_code == 2
    assert "✓" in result.stdout
    assert "bad.yaml:3:1: nope: unknown key" in result.stderr


def test_inline_tests_pass_and_fail(write_recipe, invoke) -> None:
    assert invoke("test", write_recipe(RECIPE)).exit_code == 0
    broken = write_recipe(RECIPE.replace('amount: "2.50"', 'amount: "2.55"'), "broken.yaml")
    result = invoke("test", broken)
    assert result.exit_code == 1
    assert 'amount: expected "2.55", got "2.50"' in result.stdout


def test_a_recipe_without_tests_is_told_to_add_some_and_fails(write_recipe, invoke) -> None:
    """Exit 1, as a failed test: a CI job running `connector test` must not pass a recipe whose
    map nothing checks."""
    recipe = write_recipe(RECIPE[: RECIPE.index("tests:")], "untested.yaml")
    result = invoke("test", recipe)
    assert result.exit_code == 1
    assert "cli-demo: no tests, so nothing was checked: add tests: to untested" in result.stderr
    assert "0 of 0" not in result.output
    as_json = invoke("test", recipe, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["total"] == 0


def test_inline_tests_need_no_secrets_but_a_run_does(
    write_recipe, invoke, monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv("SECRET_OUT_KEY", raising=False)
    monkeypatch.delenv("OUT_NAME", raising=False)
    recipe = write_recipe(
        RECIPE.replace("path: out.csv", 'path: "${OUT_NAME:-out}-${SECRET_OUT_KEY}.csv"')
    )
    assert invoke("test", recipe).exit_code == 0
    for command in (("state", "show"), ("dlq", "list")):
        assert invoke(*command, recipe).exit_code == 0  # looking at state needs no secret
    _records(tmp_path)
    assert invoke("validate", recipe).exit_code == 0  # so it can run in CI
    result = invoke("run", recipe)
    assert result.exit_code == 2
    assert "environment variable SECRET_OUT_KEY is not set" in result.stderr
    assert not list(tmp_path.glob("*.csv"))


def test_inline_tests_still_refuse_a_misspelt_setting(write_recipe, invoke, monkeypatch) -> None:
    monkeypatch.delenv("SECRET_OUT_KEY", raising=False)
    recipe = write_recipe(
        RECIPE.replace("path: out.csv", 'path: "${SECRET_OUT_KEY}.csv", delimeter: ";"')
    )
    result = invoke("test", recipe)
    assert result.exit_code == 2
    assert "delimeter" in result.stderr


def test_a_run_while_another_runs_exits_3_and_writes_nothing(
    write_recipe, invoke, tmp_path
) -> None:
    _records(tmp_path)
    recipe = write_recipe(RECIPE)
    other = SqliteStateStore(tmp_path / ".connector" / "state.db")
    try:
        with other.lock("cli-demo"):  # as another process's run would
            result = invoke("run", recipe)
    finally:
        other.close()
    assert result.exit_code == 3
    assert "another run of cli-demo is in progress" in result.stderr
    assert not (tmp_path / "out.csv").exists()
    assert invoke("run", recipe).exit_code == 0


def test_an_unsupported_state_url_exits_2_without_showing_it(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    _records(tmp_path)
    monkeypatch.setenv("CONNECTOR_STATE_URL", "mysql://sync:hunter2@db.example.org/state")
    result = invoke("run", write_recipe(RECIPE))
    assert result.exit_code == 2
    assert "unsupported state store 'mysql'" in result.stderr
    assert "postgresql://HOST:PORT/DATABASE?user=USER" in result.stderr  # not masked as a secret
    assert "hunter2" not in result.output
    assert not (tmp_path / "out.csv").exists()


def test_a_secret_quoted_in_an_expression_never_prints(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    secret = "sk_live_SUPERSECRET123"
    monkeypatch.setenv("TAG_SECRET", secret)
    _records(tmp_path, "r2")
    recipe = write_recipe(
        RECIPE.replace(
            "amount: record.cents | minor_to_major(record.currency)",
            'amount: "record.cents | minor_to_major(record.currency)'
            " if record.id != '${TAG_SECRET}' else 0\"",
        )
    )
    outputs = [invoke("run", recipe, "--json"), invoke("dlq", "list", recipe)]
    outputs.append(invoke("dlq", "show", recipe, "r2"))
    assert "minor_to_major" in outputs[0].stdout  # the reason quotes the expression...
    broken = write_recipe(
        RECIPE.replace("currency: record.currency | upper", "tag: \"'${TAG_SECRET}' +\""),
        "broken.yaml",
    )
    outputs.append(invoke("validate", broken))
    assert outputs[-1].exit_code == 2
    for result in outputs:
        assert secret not in result.output  # ...with the secret masked
    assert secret not in (tmp_path / ".connector" / "state.db").read_bytes().decode(
        errors="replace"
    )


def test_a_password_variable_is_masked(write_recipe, invoke, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DB_PASS", "hunter2hunter2")
    result = invoke(
        "run", write_recipe(RECIPE.replace("path: in.jsonl", 'path: "${DB_PASS}.jsonl"'))
    )
    assert result.exit_code == 3
    assert "hunter2hunter2" not in result.output


def test_state_show_and_reset(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path)
    recipe = write_recipe(RECIPE)
    invoke("run", recipe)
    assert "3 record(s)" in invoke("state", "show", recipe).stdout
    assert invoke("state", "reset", recipe, "--yes").exit_code == 0
    assert "0 record(s)" in invoke("state", "show", recipe).stdout


def test_state_reset_unconfirmed_keeps_the_state_and_says_how(
    write_recipe, invoke, tmp_path
) -> None:
    _records(tmp_path)
    recipe = write_recipe(RECIPE)
    invoke("run", recipe)
    result = invoke("state", "reset", recipe)  # no terminal to answer the question (cron, CI)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "not confirmed" in result.stderr
    assert "--yes" in result.stderr
    assert "Abort" not in result.output
    assert "3 record(s)" in invoke("state", "show", recipe).stdout


def test_a_run_s_hints_name_the_state_it_used(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path, "r2")
    recipe = write_recipe(RECIPE)
    moved = tmp_path / "elsewhere.db"
    result = invoke("run", recipe, "--state", moved)
    assert result.exit_code == 1
    shown = f"`connector dlq list {recipe} --state {moved}`"
    assert shown in " ".join(result.stderr.split())
    # ...and that command shows the dead letter, where a bare `dlq list` would find none.
    assert "r2" in invoke("dlq", "list", recipe, "--state", moved).stdout


def test_state_option_moves_the_database(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path)
    invoke("run", write_recipe(RECIPE), "--state", tmp_path / "elsewhere.db")
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / ".connector").exists()


def test_dlq_retry_after_fixing_the_recipe(write_recipe, invoke, tmp_path) -> None:
    _records(tmp_path, "r2")
    recipe = write_recipe(RECIPE)
    invoke("run", recipe)
    write_recipe(
        RECIPE.replace(
            "amount: record.cents | minor_to_major(record.currency)",
            "amount: \"0 if record.cents == 'many'"
            ' else record.cents | minor_to_major(record.currency)"',
        )
    )
    result = invoke("dlq", "retry", recipe, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcomes"]["written"] == 1
    assert json.loads(invoke("dlq", "list", recipe, "--json").stdout) == []


def test_plugins_lists_components_with_their_plugin(invoke) -> None:
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "file.csv" in result.stdout
    assert "connectors.files" in result.stdout
    assert "minor_to_major" in result.stdout


def test_schema_lists_every_component(invoke) -> None:
    schema = json.loads(invoke("schema").stdout)
    sources = [v["properties"]["use"]["const"] for v in schema["properties"]["source"]["oneOf"]]
    assert {"file.csv", "file.jsonl"} <= set(sources)
    assert schema["additionalProperties"] is False


def test_connector_test_never_prints_an_interpolated_key(write_recipe, invoke, monkeypatch) -> None:
    key = "sk_live_CanaryKey0123456789"
    monkeypatch.setenv("STRIPE_API_KEY", key)
    recipe = write_recipe(
        RECIPE.replace(
            "currency: record.currency | upper", "tag: \"'${STRIPE_API_KEY}' | to_int\""
        ).replace("currency: USD}", "tag: 1}")
    )
    result = invoke("test", recipe)
    assert result.exit_code == 1
    assert "mapping failed: tag: to_int: '***' is not a number" in result.stdout
    assert key not in result.output
    # A test that compares the key itself shows the difference, masked too.
    shown = write_recipe(
        RECIPE.replace("currency: record.currency | upper", "tag: \"'${STRIPE_API_KEY}'\"").replace(
            "currency: USD}", "tag: other}"
        ),
        "shown.yaml",
    )
    result = invoke("test", shown)
    assert result.exit_code == 1
    assert 'tag: expected "other", got "***"' in result.stdout
    assert key not in result.output


def test_an_unexpected_error_is_one_line_and_exit_3(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    _records(tmp_path)
    recipe = write_recipe(RECIPE)

    def broken(self: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("core.runner.Runner.run", broken)
    result = invoke("run", recipe)
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: unexpected ZeroDivisionError: division by zero (run again with -vv for details)"
    ]
    assert "Traceback" not in result.output
    # With -vv the traceback is what a developer asked for.
    detailed = invoke("-vv", "run", recipe)
    assert isinstance(detailed.exception, ZeroDivisionError)


def test_a_state_database_locked_by_another_process_exits_3_naming_it(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    _records(tmp_path)
    recipe = write_recipe(RECIPE)
    assert invoke("run", recipe).exit_code == 0
    _records(tmp_path, "r2")  # a changed record: the next run has something to commit
    monkeypatch.setenv("CONNECTOR_STATE_BUSY_TIMEOUT", "0.5")
    holder = sqlite3.connect(tmp_path / ".connector" / "state.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # as a backup tool or another program would
        result = invoke("run", recipe)
    finally:
        holder.close()
    assert result.exit_code == 3, result.output
    assert result.stderr.count("error:") == 1
    assert "state database" in result.stderr
    assert "locked by another process" in result.stderr
    assert "CONNECTOR_STATE_BUSY_TIMEOUT" in result.stderr
    assert invoke("run", recipe).exit_code == 1  # free again: the run goes on (r2 is invalid)


def test_the_state_is_the_option_else_the_variable_else_beside_the_recipe(
    tmp_path, monkeypatch
) -> None:
    from types import SimpleNamespace

    from core.cli import state_locations

    recipe: Any = SimpleNamespace(base_dir=tmp_path)
    monkeypatch.delenv("CONNECTOR_STATE_URL", raising=False)
    assert state_locations(None)(recipe) == tmp_path / ".connector" / "state.db"
    monkeypatch.setenv("CONNECTOR_STATE_URL", "postgresql://root@127.0.0.1/test")
    assert state_locations(None)(recipe) == "postgresql://root@127.0.0.1/test"
    assert state_locations("other.db")(recipe) == "other.db"


def test_a_question_left_unanswered_stops_in_one_line(capsys) -> None:
    import click

    from core.cli import reports_errors

    @reports_errors
    def asks() -> None:  # as the Virtuous two-factor prompt does when Ctrl-C or Ctrl-D answers
        raise click.Abort

    with pytest.raises(SystemExit) as stopped:
        asks()
    assert stopped.value.code == 130
    assert capsys.readouterr().err.startswith("error: interrupted")
