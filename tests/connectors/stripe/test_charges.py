"""``stripe.charges`` through the real SDK, routed through the central client, against the
emulator: paging, order, incremental runs, expansion, statuses, errors and retries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.stripe.charges import ChargesSettings, ChargesSource
from connectors.stripe.emulator.store import default_fee, seed_charges
from connectors.stripe.listing import ListSettings
from core.context import Context
from core.errors import AuthError
from core.http import RetryPolicy
from core.source import Unreadable
from core.state import open_state
from tests.conftest import read_jsonl
from tests.connectors.stripe.conftest import JAN_2025, KEY, Emulator


def source(emulator: Emulator, tmp_path: Path, **settings: Any) -> ChargesSource:
    values = {"api_key": KEY, "base_url": emulator.url, "start": "2025-01-01", **settings}
    context = Context("charges-test", tmp_path, open_state(tmp_path / "state.db"))
    return ChargesSource(ChargesSettings.model_validate(values), context)


def read_all(src: ChargesSource, cursor: Any = None) -> list[dict[str, Any]]:
    try:
        return list(src.read(cursor))
    finally:
        src.context.close()


def test_start_takes_a_date_a_date_time_or_unix_seconds() -> None:
    def start(value: Any) -> int | None:
        return ListSettings.model_validate({"api_key": KEY, "start": value}).start

    assert start("2025-01-01") == JAN_2025
    assert start("2025-01-01T01:00:00Z") == JAN_2025 + 3600
    assert start(str(JAN_2025)) == start(JAN_2025) == JAN_2025
    with pytest.raises(ValueError, match="start must be a date"):
        start("last tuesday")
    with pytest.raises(ValueError, match="publishable key"):
        ChargesSettings.model_validate({"api_key": "pk_test_abc"})


def test_pages_are_read_to_the_end_and_yielded_oldest_first(emulator, tmp_path) -> None:
    made = seed_charges(emulator.store, 25)
    records = read_all(source(emulator, tmp_path, page_size=10))
    assert [r["id"] for r in records] == [c["id"] for c in made]
    first, *rest = emulator.lists()
    assert "created[lt]" not in first["query"]  # the newest page: there is more than a page
    first_window = [r for r in rest if f"created[gte]={JAN_2025}&created[lt]=" in r["query"]]
    assert len(first_window) == 3  # 10 + 10 + 5, through the SDK's auto_paging_iter
    assert "starting_after=" in first_window[-1]["query"]
    assert all("limit=10" in r["query"] for r in first_window)


def test_windows_keep_order_across_months_and_widen_over_quiet_stretches(
    emulator, tmp_path
) -> None:
    made = seed_charges(emulator.store, 3, spacing=40 * 86_400)  # Jan, Feb, Mar 2025
    # From a cursor: a first run would read these three in one request (the newest page).
    src = source(emulator, tmp_path, window_days=30, overlap_seconds=0)
    records = read_all(src, cursor=JAN_2025)
    assert [r["id"] for r in records] == [c["id"] for c in made]
    lowers = [int(r["query"].split("created[gte]=")[1].split("&")[0]) for r in emulator.lists()]
    assert lowers == sorted(lowers)
    steps = [b - a for a, b in zip(lowers, lowers[1:], strict=False)]
    assert steps[:2] == [30 * 86_400, 30 * 86_400]
    assert max(steps) > 30 * 86_400  # empty windows are crossed in wider steps


def test_expansion_gives_fee_net_and_the_customer(emulator, tmp_path) -> None:
    seed_charges(emulator.store, 1, amount=10_000, currency="eur")
    (record,) = read_all(source(emulator, tmp_path, expand_customer=True))
    assert record["fee"] == default_fee(10_000, "eur") == 320
    assert record["net"] == 9_680
    assert record["fee_currency"] == "eur"
    assert record["balance_transaction"]["object"] == "balance_transaction"
    assert record["customer"]["id"] == record["customer_id"]
    assert (record["customer_name"], record["customer_email"]) == (
        "Ada Lovelace",
        "ada.lovelace@example.org",
    )
    assert record["metadata"] == {}


def test_without_expansion_the_ids_stay(emulator, tmp_path) -> None:
    seed_charges(emulator.store, 1)
    (record,) = read_all(source(emulator, tmp_path, expand_balance_transaction=False))
    assert "expand" not in emulator.lists()[0]["query"]
    assert record["balance_transaction"].startswith("txn_")
    assert record["fee"] is record["net"] is record["customer_email"] is None
    assert record["customer_id"].startswith("cus_")


def test_statuses_choose_which_charges_are_read(emulator, tmp_path) -> None:
    seed_charges(emulator.store, 2, status="succeeded")
    seed_charges(emulator.store, 1, status="failed", start=JAN_2025 + 60)
    default = read_all(source(emulator, tmp_path))
    assert [r["status"] for r in default] == ["succeeded", "succeeded"]
    wider = read_all(source(emulator, tmp_path, statuses=["succeeded", "failed"]))
    assert sorted(r["status"] for r in wider) == ["failed", "succeeded", "succeeded"]
    assert len(read_all(source(emulator, tmp_path, statuses=None))) == 3


def test_a_pending_charge_holds_the_cursor_back(emulator, tmp_path) -> None:
    seed_charges(emulator.store, 1, start=JAN_2025)
    seed_charges(emulator.store, 1, start=JAN_2025 + 100, status="pending")
    seed_charges(emulator.store, 1, start=JAN_2025 + 200)
    src = source(emulator, tmp_path)
    records = read_all(src)
    assert [r["created"] - JAN_2025 for r in records] == [0, 200]
    assert [src.cursor_value(r) for r in records] == [JAN_2025, JAN_2025 + 100]


def test_traffic_goes_through_the_central_client(emulator, tmp_path, monkeypatch) -> None:
    """Every request the emulator saw left through the transport the central client builds,
    and it carried the credential that the central client's auth layer sets."""
    sent: list[httpx.Request] = []

    class Spy(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return super().handle_request(request)

    monkeypatch.setattr("core.http.client.httpx.HTTPTransport", Spy)
    seed_charges(emulator.store, 12)
    assert len(read_all(source(emulator, tmp_path, page_size=5))) == 12
    assert len(sent) == len(emulator.requests) > 3
    assert {r.headers["Authorization"] for r in sent} == {f"Bearer {KEY}"}
    assert all(r.headers["Stripe-Version"] for r in sent)  # built by the SDK


def test_a_refused_key_is_an_auth_error_naming_stripe(emulator, tmp_path) -> None:
    src = source(emulator, tmp_path, api_key="sk_test_not_the_right_key_9999")
    with pytest.raises(AuthError) as caught:
        read_all(src)
    assert caught.value.service == "Stripe"
    assert "sk_test_not_the_right_key_9999" not in str(caught.value)
    assert len(emulator.requests) == 1  # a 401 is never retried


# --- through the command line, into a JSON Lines file ----------------------------------------


def run(invoke, recipe: Path) -> dict[str, Any]:
    result = invoke("run", recipe, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_second_run_reads_only_the_overlap_and_writes_nothing(
    emulator_env, charges_recipe, invoke, tmp_path
) -> None:
    made = seed_charges(emulator_env.store, 30, spacing=600)  # 600 s apart
    recipe = charges_recipe(page_size=10)
    first = run(invoke, recipe)
    assert first["outcomes"]["written"] == 30
    assert first["money"] == {"USD": f"{sum(c['amount'] for c in made) / 100:.2f}"}
    before = len(emulator_env.requests)

    second = run(invoke, recipe)
    last = made[-1]["created"]
    assert second["outcomes"]["written"] == 0
    assert second["outcomes"]["unchanged"] == 7  # the hour before the cursor, and the cursor
    again = emulator_env.requests[before:]
    assert f"created[gte]={last - 3600}&" in again[0]["query"]
    assert "starting_after" not in " ".join(r["query"] for r in again)  # one page was enough

    seed_charges(emulator_env.store, 1, start=last + 60, amount=9900)
    third = run(invoke, recipe)
    assert third["outcomes"]["written"] == 1
    lines = read_jsonl(tmp_path / "out" / "charges.jsonl")
    assert len(lines) == 31
    assert lines[-1]["amount"] == "99.00"


def test_a_bad_key_exits_3_naming_stripe_and_never_shows_the_key(
    emulator_env, charges_recipe, invoke, tmp_path, monkeypatch
) -> None:
    wrong = "sk_test_Wr0ngKeyWr0ngKeyWr0ng4321"
    monkeypatch.setenv("STRIPE_API_KEY", wrong)
    seed_charges(emulator_env.store, 1)
    result = invoke("run", charges_recipe(), "--json")
    assert result.exit_code == 3
    assert "Stripe refused the credential (401)" in result.output
    assert "Invalid API Key provided: sk_test_****4321" in result.output
    assert wrong not in result.output
    state = (tmp_path / ".connector" / "state.db").read_bytes()
    assert wrong.encode() not in state


def test_server_faults_are_retried_by_the_central_client(
    emulator_env, charges_recipe, invoke, monkeypatch
) -> None:
    monkeypatch.setattr("connectors.stripe.service._RETRY", RetryPolicy(base_delay=0.01))
    made = seed_charges(emulator_env.store, 20)
    emulator_env.app.state.settings.faults.update(error_rate=0.3, error_statuses=[500, 503], seed=7)
    report = run(invoke, charges_recipe(page_size=5))
    assert report["outcomes"]["written"] == len(made)
    log = emulator_env.requests
    assert sum(r["status"] >= 500 for r in log) >= 2
    # The SDK's own retries are off: each 5xx is followed by the same request again (the central
    # client's retry), and every distinct request was answered 200 exactly once.
    for failed, following in zip(log, log[1:], strict=False):
        if failed["status"] >= 500:
            assert following["query"] == failed["query"]
    answered = [r["query"] for r in log if r["status"] == 200]
    assert sorted(answered) == sorted({r["query"] for r in log})


@pytest.mark.parametrize("kind", ["charges", "refunds"])
def test_a_misspelt_status_is_refused_before_anything_is_read(
    emulator_env, write_recipe, invoke, kind
) -> None:
    """A typo would otherwise read nothing at all, every run, and say all went well."""
    seed_charges(emulator_env.store, 1)
    recipe = write_recipe(
        f"""
        version: 1
        name: typo
        source:
          use: stripe.{kind}
          with: {{api_key: "${{STRIPE_API_KEY}}", base_url: "${{STRIPE_BASE_URL}}",
                 statuses: [succeded]}}
        map: {{id: record.id}}
        sink:
          use: file.jsonl
          with: {{path: out.jsonl}}
        """
    )
    result = invoke("run", recipe)
    assert result.exit_code == 2
    assert "source.with.statuses.0" in result.output
    assert "'succeeded'" in result.output
    assert emulator_env.requests == []


def test_a_lasting_outage_is_tried_as_often_as_the_central_policy_says_and_no_more(
    emulator_env, charges_recipe, invoke, monkeypatch
) -> None:
    """The SDK's own retry loop is off, so the retries do not multiply: one list request is sent
    exactly ``attempts`` times, then the run stops naming Stripe and the status."""
    monkeypatch.setattr("connectors.stripe.service._RETRY", RetryPolicy(base_delay=0.001))
    seed_charges(emulator_env.store, 3)
    emulator_env.app.state.settings.faults.update(error_rate=1.0, error_statuses=[503])
    result = invoke("run", charges_recipe(), "--json")
    assert result.exit_code == 3
    assert "Stripe answered 503 after retries" in result.output
    assert [r["status"] for r in emulator_env.requests] == [503] * RetryPolicy().attempts


@pytest.mark.parametrize(
    ("broken", "field", "problem"),
    [
        ({"amount": None}, "amount", "valid integer"),
        ({"amount": "2500"}, "amount", "valid integer"),
        ({"amount": 25.5}, "amount", "valid integer"),
        ({"currency": None}, "currency", "valid string"),
        ({"captured": "no"}, "captured", "valid boolean"),
    ],
)
def test_a_charge_that_breaks_the_contract_is_dead_lettered_naming_the_field(
    emulator_env, charges_recipe, invoke, tmp_path, broken, field, problem
) -> None:
    """A charge whose amount is missing or not an integer would be mis-read as money (a string
    "2500" read as 25.00): it is dead-lettered naming the field, and the others go on."""
    made = seed_charges(emulator_env.store, 3)
    emulator_env.store.charges[made[1]["id"]].update(broken)
    result = invoke("run", charges_recipe(), "--json")
    assert result.exit_code == 1, result.output  # a dead letter: the run goes on and says so
    report = json.loads(result.stdout)
    assert (report["outcomes"]["written"], report["outcomes"]["invalid"]) == (2, 1)
    (dead,) = report["problems"]
    assert dead["key"] == made[1]["id"]
    assert f"'{field}'" in dead["reason"]
    assert problem in dead["reason"]
    assert "published contract" in dead["reason"]
    written = {line["id"] for line in read_jsonl(tmp_path / "out" / "charges.jsonl")}
    assert written == {made[0]["id"], made[2]["id"]}


def test_a_charge_missing_its_amount_is_named_once_in_the_log(emulator, tmp_path, caplog) -> None:
    made = seed_charges(emulator.store, 4)
    for charge in made[:3]:
        del emulator.store.charges[charge["id"]]["amount"]
    records = read_all(source(emulator, tmp_path))
    unreadable = [r for r in records if isinstance(r, Unreadable)]
    assert [u.key for u in unreadable] == [c["id"] for c in made[:3]]
    assert all("'amount' missing" in u.reason for u in unreadable)
    assert [r["id"] for r in records if not isinstance(r, Unreadable)] == [made[3]["id"]]
    warnings = [r for r in caplog.records if "amount" in r.getMessage()]
    assert len(warnings) == 1


# --- progress: a read commits within a few thousand records, whatever its windows -------------

DAY = 86_400


def _served_before(emulator: Emulator, records: Iterator[Any]) -> tuple[Any, int]:
    """The first record ``records`` yields, and how many list pages Stripe had served for it."""
    first = next(records)
    return first, len(emulator.lists())


def test_a_first_read_after_empty_months_yields_within_a_few_thousand_records(
    emulator, tmp_path
) -> None:
    """Issue 9: the windows widen over empty months up to 240 days, and the first window with
    charges in it was read whole before anything was yielded, so the runner had nothing to
    commit: a run killed then lost all it had read. Now a window holding more than
    ``max_window_records`` is read again, narrower, and every window is yielded (and so
    committable) within a few thousand records."""
    start = JAN_2025 - 365 * DAY
    made = seed_charges(
        emulator.store, 5000, start=start + 215 * DAY, spacing=1800, customers=False
    )
    src = source(emulator, tmp_path, start=start)
    try:
        records = src.read(None)
        first, pages = _served_before(emulator, records)
        assert first["id"] == made[0]["id"]
        assert pages * 100 <= 2 * 2000 + 300  # at most two windows' worth, and a few empty ones
        assert src.cursor_value(first) == made[0]["created"]
    finally:
        src.context.close()


def test_a_dense_second_packs_no_narrower_than_a_second(emulator, tmp_path) -> None:
    """More charges in one second than a window may hold cannot be split: they are read whole."""
    made = seed_charges(emulator.store, 30, spacing=0)
    records = read_all(source(emulator, tmp_path, max_window_records=10, page_size=5))
    assert sorted(r["id"] for r in records) == sorted(c["id"] for c in made)


def test_narrowed_windows_keep_order_and_lose_nothing(emulator, tmp_path) -> None:
    """Bursts and lulls: the width follows the density, every charge arrives once, in order."""
    made = []
    for burst in range(3):
        made += seed_charges(emulator.store, 40, start=JAN_2025 + burst * 2 * DAY, spacing=60)
    made += seed_charges(emulator.store, 3, start=JAN_2025 + 90 * DAY, spacing=DAY)
    records = read_all(source(emulator, tmp_path, max_window_records=25, page_size=10))
    assert [r["id"] for r in records] == [c["id"] for c in made]
    assert len(emulator.lists()) < 70  # a burst costs a re-read, a lull a few doublings


def test_more_charges_than_a_window_holds_in_the_very_last_second_are_read_whole(
    emulator, tmp_path
) -> None:
    """The open-ended last window cannot be split below the present second."""
    now = int(time.time())
    made = seed_charges(emulator.store, 12, start=now + 60, spacing=0)
    records = read_all(source(emulator, tmp_path, start=now - 3, max_window_records=5))
    assert sorted(r["id"] for r in records) == sorted(c["id"] for c in made)


def test_a_split_window_leaves_no_sliver_to_read(emulator, tmp_path) -> None:
    """600 charges at ten a day, at most 240 a window: after the first window overflows, the
    windows hold about 120 charges each (two pages). A split used to leave a window of the one
    charge read past the cap, and windows ending a few charges short of a cut, each a request,
    after which the width regrew from the sliver by doublings: 22 requests where 13 do."""
    start = int(time.time()) - 60 * DAY
    made = seed_charges(emulator.store, 600, start=start, spacing=DAY // 10, customers=False)
    src = source(emulator, tmp_path, max_window_records=240, overlap_seconds=0)
    records = read_all(src, cursor=start)
    assert [r["id"] for r in records] == [c["id"] for c in made]
    assert len(emulator.lists()) <= 3 + 2 * 600 // 120 + 2  # the overflow, the windows, the last
