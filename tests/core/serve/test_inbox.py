"""The inbox in the SQLite state store, and ``connector inbox list|retry``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner, Result

from core.cli import Session, with_plugin_commands
from core.hints import hint_target
from core.json_numbers import parse_json
from core.serve.claims import gone
from core.state import NewEvent, SqliteStateStore, inbox_of, open_state
from core.state.schema import VERSION
from tests.core.serve.conftest import Bench
from tests.core.serve.signed import SignedPlugin, event
from tests.core.state.backends import time_passes


def _new(key: str, event_id: str | None = None, **record: object) -> NewEvent:
    return NewEvent("hooks", "GiftCreate", key, {"id": key, **record}, event_id)


def test_an_event_id_is_kept_once_and_records_come_back_with_their_number_types(
    tmp_path: Path,
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    exact = parse_json('{"amount": 40.00}')["amount"]
    record = {"float": 40.0, "exact": exact, "decimal": Decimal("1.5"), "text": "\udc80"}
    assert store.inbox_enqueue([_new("g1", "evt_1", **record)]) == 1
    assert store.inbox_enqueue([_new("g1", "evt_1", **record), _new("g2")]) == 1
    [first, second] = store.inbox_events("hooks")
    assert (first.key, second.key) == ("g1", "g2")
    # A float and the decimal it prints as digest differently: each stays what it was.
    kept = first.record
    assert [type(kept[k]).__name__ for k in ("float", "exact", "decimal")] == [
        "float",
        "JsonNumber",
        "Decimal",
    ]
    assert kept == {"id": "g1", **record}
    store.close()


def test_claims_keep_the_order_of_each_key_and_a_lease_hides_what_is_claimed(
    tmp_path: Path,
) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    store.inbox_enqueue([_new("a", v=1), _new("b"), _new("a", v=2), _new("c")])
    claimed = store.inbox_claim("hooks", 10, lease=100)
    assert [(e.key, e.record.get("v")) for e in claimed] == [("a", 1), ("b", None), ("c", None)]
    assert store.inbox_claim("hooks", 10, lease=100) == []  # a's second waits
    store.inbox_done([claimed[0].seq])
    [second] = store.inbox_claim("hooks", 10, lease=100)
    assert (second.key, second.record["v"]) == ("a", 2)
    # As a server does when it starts and their holder is gone: they are claimed again.
    assert store.inbox_release("hooks", lambda holder: True) == 3
    assert [e.key for e in store.inbox_claim("hooks", 10, lease=100)] == ["b", "a", "c"]
    assert store.inbox_depth() == {("hooks", "pending"): 3}
    assert store.inbox_prune(keep=0) == 1  # the done one
    store.close()


def test_a_version_2_state_file_gains_the_inbox_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    with sqlite3.connect(path) as db:  # as version 2 left it: no inbox
        db.execute("DROP TABLE inbox")
        db.execute("UPDATE state_schema SET version = 2")
    store = SqliteStateStore(path)
    assert store.inbox_enqueue([_new("g1")]) == 1
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM state_schema").fetchall() == [(VERSION,)]


def test_a_version_6_state_files_claims_gain_no_holder_and_run_out(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    store.inbox_enqueue([_new("g1")])
    store.inbox_claim("hooks", 10, lease=100)
    store.close()
    with sqlite3.connect(path) as db:  # as version 6 left it: claims name no holder
        db.execute("ALTER TABLE inbox DROP COLUMN claimed_by")
        db.execute("UPDATE state_schema SET version = 6")
    store = SqliteStateStore(path)
    assert store.inbox_release("hooks", gone) == 0  # a holder it cannot tell about
    assert store.inbox_claim("hooks", 10, lease=100, holder="new") == []
    time_passes(str(path), 100)
    assert [e.key for e in store.inbox_claim("hooks", 10, 100, "new")] == ["g1"]
    store.close()


def test_inbox_list_and_retry_through_the_cli(bench: Callable[..., Bench]) -> None:
    from core.serve.drain import DrainSettings
    from tests.core.serve.conftest import recipe_text
    from tests.core.serve.test_drain import SWITCHED

    served = bench(recipe_text(sink=SWITCHED), DrainSettings(first_backoff=60))
    (served.directory / "down").touch()
    served.post(event("g1", amount=5, event_id="evt_1"))
    served.drain()

    def connector(*args: str) -> str:
        session = Session()
        session.pm.register(SignedPlugin(), "test-webhooks")
        group = with_plugin_commands(session)
        arguments = [*args, str(served.recipe.path), "--state", served.location]
        result = CliRunner().invoke(group, arguments, obj=session)
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(connector("inbox", "list", "--json"))
    assert [(e["key"], e["event_id"], e["attempts"]) for e in listed] == [("g1", "evt_1", 1)]
    assert listed[0]["last_error"].startswith("the sink did not take it: ")
    assert "the test service is down" in listed[0]["last_error"]
    waiting = connector("inbox", "list")
    assert "1 event(s) in the inbox of hooks" in waiting
    target = hint_target(served.recipe.path, served.location)  # a URL is not repeated
    assert f"`connector inbox retry {target}` makes them due now" in waiting
    assert "1 event(s) of hooks to be tried again" in connector("inbox", "retry")
    (served.directory / "down").unlink()
    served.drain()
    assert served.out() == [{"id": "g1", "amount": 5}]
    assert "0 event(s) in the inbox of hooks" in connector("inbox", "list")
    done = connector("inbox", "list", "--all")
    assert "done     GiftCreate  key g1  received" in done  # no "attempts 0"
    assert "attempts" not in done


def test_inbox_list_names_the_command_that_takes_a_failed_event_again(
    tmp_path: Path, write_recipe, invoke
) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: hooks
        source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        """
    )
    store = SqliteStateStore(tmp_path / "state.db")
    store.inbox_enqueue([_new("g1")])
    [claimed] = store.inbox_claim("hooks", 10, lease=100)
    store.inbox_failed([(claimed.seq, "the sink is down")], lambda n: 60.0, max_attempts=1)
    store.close()
    listed = invoke("inbox", "list", recipe, "--state", tmp_path / "state.db").stdout
    assert "failed attempts 1" in listed
    assert (
        "1 failed after every attempt: once what the last error names is fixed,"
        f" `connector inbox retry {recipe} --state {tmp_path / 'state.db'}` makes them due again"
    ) in listed
    assert "waiting" not in listed  # nothing else waits: no serve to start


def test_inbox_list_says_when_each_waiting_event_is_tried_next(
    write_recipe: Callable[..., Path], invoke: Callable[..., Result], state_location: str
) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: hooks
        source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        """
    )
    state = open_state(state_location)
    inbox = inbox_of(state)
    inbox.inbox_enqueue([_new("held"), _new("waits"), _new("lost"), _new("due")])
    held, waits, lost = inbox.inbox_claim("hooks", 3, lease=60, holder="worker-1")
    inbox.inbox_failed([(waits.seq, "the sink is down")], lambda n: 600.0, max_attempts=5)
    inbox.inbox_failed([(lost.seq, "the sink is down")], lambda n: 600.0, max_attempts=1)
    state.close()
    arguments = ("inbox", "list", recipe, "--state", state_location)
    listed = {e["key"]: e for e in json.loads(invoke(*arguments, "--json").stdout)}

    def after(key: str, moment: str | None) -> float:
        assert moment is not None
        since = datetime.fromisoformat(listed[key]["received_at"])
        return (datetime.fromisoformat(moment) - since).total_seconds()

    assert listed["due"]["next"] == {"at": listed["due"]["received_at"], "leased_until": None}
    assert listed["held"]["next"]["at"] == listed["held"]["received_at"]
    assert 58 <= after("held", listed["held"]["next"]["leased_until"]) <= 62  # a worker has it
    assert listed["waits"]["next"]["leased_until"] is None
    assert 598 <= after("waits", listed["waits"]["next"]["at"]) <= 602  # after its backoff
    assert listed["lost"]["next"] is None  # failed for good: only `inbox retry` tries it again
    lines = {line.split()[4]: line for line in invoke(*arguments).stdout.splitlines()[:4]}
    claimed = f"claimed until {listed['held']['next']['leased_until']}"
    assert claimed in lines["held"]
    assert f"next attempt {listed['waits']['next']['at']}" in lines["waits"]
    assert ["claimed" in line for line in lines.values()] == [True, False, False, False]
