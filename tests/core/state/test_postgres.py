"""The Postgres state backend through the CLI a user types: chosen by its URL, its password
never shown, a server that is not there named in one line, its schema versioned and migrated."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from core.errors import FatalError
from core.state import open_state
from core.state.pg_schema import VERSION
from tests.conftest import read_jsonl, write_jsonl
from tests.core.state.backends import postgres_or_skip, postgres_schema

RECIPE = """
version: 1
name: pg-demo
source:
  use: file.jsonl
  with: {path: in.jsonl, key: id}
map:
  id: record.id
  amount: record.cents | minor_to_major(record.currency)
sink:
  use: file.jsonl
  with: {path: out.jsonl, batch_size: 2}
"""

PASSWORD = "pg-s3cret-never-shown"


@pytest.fixture
def url() -> Iterator[str]:
    """A state URL with a password (the server trusts loopback: it is accepted, not checked)."""
    with postgres_schema() as plain:
        yield plain.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"d{i}", "cents": 100 * i, "currency": "usd"} for i in range(1, n + 1)]


def test_a_run_keeps_its_state_in_postgres_and_never_shows_the_password(
    url: str,
    write_recipe: Callable[..., Path],
    invoke: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_jsonl(tmp_path / "in.jsonl", _rows(5))
    recipe = write_recipe(RECIPE)
    monkeypatch.setenv("CONNECTOR_STATE_URL", url)
    first = invoke("run", recipe, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["outcomes"]["written"] == 5
    write_jsonl(tmp_path / "in.jsonl", [*_rows(5), *_rows(7)[5:]])
    second = invoke("run", recipe, "--json")  # the ledger in Postgres: only the new two
    outcomes = json.loads(second.stdout)["outcomes"]
    assert (outcomes["written"], outcomes["unchanged"]) == (2, 5)
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 7
    assert not (tmp_path / ".connector" / "state.db").exists()  # nothing kept beside it
    shown = invoke("state", "show", recipe)
    assert "@127.0.0.1:5432/test" in shown.stdout  # the server, its user masked
    for result in (first, second, shown):
        assert PASSWORD not in result.output


def test_the_state_option_names_postgres_too(
    url: str, write_recipe: Callable[..., Path], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "in.jsonl", _rows(3))
    result = invoke("run", write_recipe(RECIPE), "--json", "--state", url)
    assert json.loads(result.stdout)["outcomes"]["written"] == 3
    store = open_state(url)
    try:
        assert [e.key for e in store.ledger_entries("pg-demo")] == ["d1", "d2", "d3"]
    finally:
        store.close()


def test_a_server_that_is_not_there_is_one_line_naming_it_never_the_password(
    write_recipe: Callable[..., Path], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "in.jsonl", _rows(1))
    url = f"postgresql://sync:{PASSWORD}@127.0.0.1:1/state"  # port 1: nothing listens
    result = invoke("run", write_recipe(RECIPE), "--state", url)
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot use the state database postgresql://" in result.stderr
    assert "@127.0.0.1:1/state" in result.stderr
    assert PASSWORD not in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_a_malformed_url_is_the_users_to_fix(
    write_recipe: Callable[..., Path], invoke: Callable[..., Result], tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "in.jsonl", _rows(1))
    url = f"postgresql://sync:{PASSWORD}@127.0.0.1/state?sslmode=sometimes&nonsense=1"
    result = invoke("run", write_recipe(RECIPE), "--state", url)
    assert result.exit_code == 2, result.output
    assert "is not a PostgreSQL URL" in result.stderr
    assert PASSWORD not in result.output


def test_the_schema_version_is_recorded_and_a_newer_one_refused(url: str) -> None:
    open_state(url).close()
    admin = postgres_or_skip()
    schema = url.rsplit("%3D", 1)[1]
    (found,) = admin.execute(f"SELECT version FROM {schema}.state_schema").fetchone()
    assert found == VERSION
    open_state(url).close()  # at its version: opened as it is
    admin.execute(f"UPDATE {schema}.state_schema SET version = {VERSION + 1}")
    with pytest.raises(FatalError, match=f"of version {VERSION + 1}, newer than this connector"):
        open_state(url)


def test_many_processes_starting_at_once_migrate_it_once(url: str) -> None:
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            open_state(url).close()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_tokens_and_budgets_live_in_the_database_every_machine_shares(postgres_url: str) -> None:
    from core.http import store_for, token_store_for
    from core.http.pg_store import PostgresBudgetStore, PostgresTokenStore

    state = open_state(postgres_url)
    try:
        token_store_for(state).save("virtuous:org-1", {"refresh_token": "rotated-2"})
        now = 1_700_000_000.0
        assert [store_for(state).take("k", 2, 60, now) for _ in range(2)] == [0, 0]
    finally:
        state.close()
    # Another machine's stores (connections of their own) see the same rows.
    assert PostgresTokenStore(postgres_url).load("virtuous:org-1") == {"refresh_token": "rotated-2"}
    assert PostgresBudgetStore(postgres_url).take("k", 2, 60, now) == pytest.approx(60)


def test_no_secret_of_a_run_is_stored_in_any_table(
    postgres_url: str,
    invoke: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.connectors.virtuous.support import running
    from tests.reliability.support import PROJECTS, csv_to_virtuous, donations_csv

    canary = "vk_live_CANARY_9d1f3a7b52"
    with running(api_keys={canary: {"org": "org-1"}}) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        monkeypatch.setenv("VIRTUOUS_BASE_URL", virtuous.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", canary)
        donations_csv(tmp_path / "donations.csv", 12, "secrets")
        result = invoke(
            "-vv", "run", csv_to_virtuous(tmp_path, 5), "--json", "--state", postgres_url
        )
    assert result.exit_code == 0, result.output
    assert canary not in result.output
    admin, schema = postgres_or_skip(), postgres_url.rsplit("%3D", 1)[1]
    tables = admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
    ).fetchall()
    written = admin.execute(f"SELECT count(*) FROM {schema}.ledger").fetchone()
    assert written[0] == json.loads(result.stdout)["outcomes"]["written"] > 0
    for (table,) in tables:
        rows = repr(admin.execute(f"SELECT * FROM {schema}.{table}").fetchall())
        assert canary not in rows, table
