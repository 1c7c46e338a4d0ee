"""virtuous.gift_transactions against the emulator: each gift once, inside the rate limit."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import (
    KEY,
    donations_csv,
    gifts_recipe,
    report,
    running,
    serving,
)

TRANSACTIONS = ("/api/v2/Gift/Transactions", "/api/v2/Gift/Transaction")


def test_gifts_are_submitted_imported_and_never_sent_twice(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 7)
    recipe = write_recipe(gifts_recipe(batch=3))
    first = report(invoke("run", recipe, "--json"))
    assert first["outcomes"]["written"] == 7
    assert first["money"] == {"USD": str(sum(1000 + n for n in range(1, 8)) / 100)}
    assert virtuous.state()["counts"]["pending"] == 7
    assert virtuous.import_now()["giftsCreated"] == 7
    gift = virtuous.gift("Test", "g-3").json()
    assert gift["amount"] == 10.03
    assert gift["giftDate"] == "2025-03-01T00:00:00"
    sent = len([r for r in virtuous.requests() if r["path"] in TRANSACTIONS])
    assert sent == math.ceil(7 / 3)
    second = report(invoke("run", recipe, "--json"))
    assert second["outcomes"]["unchanged"] == 7
    assert len([r for r in virtuous.requests() if r["path"] in TRANSACTIONS]) == sent
    assert virtuous.state()["counts"]["gifts"] == 7


def test_a_record_virtuous_refuses_is_dead_lettered_the_others_written(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 5)
    recipe = write_recipe(gifts_recipe(batch=5))
    # Submitted earlier by someone else: Virtuous refuses the repeated transaction id, and
    # it must not count as a failure (the gift is there) nor be sent again.
    donations_csv(tmp_path / "donations.csv", 1, start=4)
    report(invoke("run", recipe, "--json", "--state", tmp_path / "other.db"))
    donations_csv(tmp_path / "donations.csv", 5, **{"g-2": {"date": "2025-02-30"}})
    result = report(invoke("run", recipe, "--json"))
    assert result["outcomes"] == {**result["outcomes"], "written": 3, "unchanged": 1, "invalid": 1}
    problem = result["problems"][0]
    assert problem["key"] == "g-2"
    assert problem["field"] == "giftDate"
    assert virtuous.import_now()["giftsCreated"] == 4  # g-1, g-3, g-4 (once), g-5
    assert virtuous.gift("Test", "g-4").status_code == 200


# The project the designated gifts name: the sink checks designations against Virtuous's projects.
GENERAL_FUND = {"name": "General Fund", "projectCode": "GENERAL"}


def _designated(batch: int, short: str) -> str:
    """The gifts recipe with a designation of each gift's whole amount, but 1 for `short`'s."""
    return gifts_recipe(batch=batch).replace(
        "  giftType: \"'Credit'\"\n",
        "  giftType: \"'Credit'\"\n  designations:\n    - code: record.fund\n"
        f"      amountDesignated: \"1 if record.id == '{short}' else"
        ' record.cents | to_int | minor_to_major(record.currency)"\n',
    )


def test_a_server_side_refusal_splits_the_batch(
    monkeypatch, write_recipe, invoke, tmp_path, transaction_validation
) -> None:
    mode = {"require_designation_sum": True, "transaction_validation": transaction_validation}
    with serving(monkeypatch, **mode) as emulator:
        emulator.control("POST", "seed", json={"projects": [GENERAL_FUND]})
        donations_csv(tmp_path / "donations.csv", 6)
        recipe = write_recipe(_designated(batch=6, short="g-5"))
        result = report(invoke("run", recipe, "--json"))
        if transaction_validation == "lenient":  # accepted; the import sets it aside, saying why
            assert result["outcomes"]["written"] == 6
            (aside,) = emulator.import_now()["needsUpdate"]
            assert aside["transactionId"] == "g-5"
            (row,) = json.loads(invoke("status", recipe, "--json").stdout)["needs_update"]
            assert (row["key"], row["reason"]) == ("g-5", aside["reason"])
            assert "designated amounts (1) must equal the amount" in row["reason"]
            return
        assert result["outcomes"]["written"] == 5
        assert result["outcomes"]["invalid"] == 1
        assert result["problems"][0]["key"] == "g-5"
        assert "Virtuous refused it" in result["problems"][0]["reason"]
        assert emulator.state()["counts"]["pending"] == 5


def test_a_duplicate_and_a_refusal_in_one_batch_are_told_apart(
    monkeypatch, write_recipe, invoke, tmp_path, transaction_validation
) -> None:
    mode = {"require_designation_sum": True, "transaction_validation": transaction_validation}
    with serving(monkeypatch, **mode) as emulator:
        emulator.control("POST", "seed", json={"projects": [GENERAL_FUND]})
        recipe = write_recipe(_designated(batch=4, short="g-3"))
        donations_csv(tmp_path / "donations.csv", 1, start=2)  # g-2 went in through another run
        report(invoke("run", recipe, "--json", "--state", tmp_path / "other.db"))
        donations_csv(tmp_path / "donations.csv", 4)
        result = report(invoke("run", recipe, "--json"))
        pending = sorted(p["transactionId"] for p in emulator.state()["pending"])
    if transaction_validation == "lenient":  # only the repeat is refused at POST
        assert result["outcomes"] == {**result["outcomes"], "written": 3, "unchanged": 1}
        assert pending == ["g-1", "g-2", "g-3", "g-4"]
        return
    assert result["outcomes"] == {**result["outcomes"], "written": 2, "unchanged": 1, "invalid": 1}
    (problem,) = result["problems"]
    assert problem["key"] == "g-3"  # refused for its designations, not taken for a duplicate
    assert problem["field"] == "designations"
    assert "designated amounts" in problem["reason"]
    assert "already been submitted" not in problem["reason"]
    assert pending == ["g-1", "g-2", "g-4"]


def test_a_wrong_key_stops_the_run_without_showing_it(
    virtuous, write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("VIRTUOUS_API_KEY", "wrong-key-8a7c1f0e55")
    donations_csv(tmp_path / "donations.csv", 2)
    result = invoke("run", write_recipe(gifts_recipe()))
    assert result.exit_code == 3
    assert "Virtuous refused the API key (401)" in result.stderr
    assert "wrong-key-8a7c1f0e55" not in result.output
    assert b"wrong-key-8a7c1f0e55" not in (tmp_path / ".connector" / "state.db").read_bytes()


def test_a_key_without_permission_names_what_it_lacks(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    keys = {KEY: {"org": "org-1", "permissions": ["contacts:read"]}}
    with serving(monkeypatch, api_keys=keys):
        donations_csv(tmp_path / "donations.csv", 1)
        result = invoke("run", write_recipe(gifts_recipe()))
    assert result.exit_code == 3
    assert "Virtuous denied access (403)" in result.stderr
    assert "permission group does not grant 'gifts:write'" in result.stderr


@pytest.mark.parametrize("credential", ["api_key", "oauth"])
def test_500_gifts_in_a_small_window_never_meet_a_429(
    monkeypatch, write_recipe, invoke, tmp_path, credential
) -> None:
    user = {"email": "ops@example.org", "password": "pw-5f0c9e1a", "org": "org-1"}
    with serving(monkeypatch, rate_limit=3, rate_window_seconds=1, users=[user]) as emulator:
        donations_csv(tmp_path / "donations.csv", 500)
        text = gifts_recipe(batch=50, limit=3, window=1)
        if credential == "oauth":
            text = text.replace(
                '    api_key: "${VIRTUOUS_API_KEY}"\n',
                f"    username: {user['email']}\n    password: {user['password']}\n",
            )
        result = report(invoke("run", write_recipe(text), "--json"))
        log = emulator.requests()
    assert result["outcomes"]["written"] == 500
    assert [r for r in log if r["status"] == 429] == []
    auth = 1 if credential == "oauth" else 0
    assert len([r for r in log if r["path"] == "/Token"]) == auth
    assert len(log) == math.ceil(500 / 50) + auth  # nothing sent but the batches and the login


def test_a_storm_of_429s_is_waited_out_and_the_wait_is_shown(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    # As long as the 5 attempts allowed for failures: a 429 was never processed, and the
    # server said when to come back, so the run waits (and says until when) instead of failing.
    faults = {"rate_limit_storm": 5, "storm_retry_after": 1}
    with serving(monkeypatch, faults=faults) as emulator:
        donations_csv(tmp_path / "donations.csv", 20)
        result = invoke("-v", "run", write_recipe(gifts_recipe(batch=10)), "--json")
        log = emulator.requests()
    assert report(result)["outcomes"]["written"] == 20
    assert len([r for r in log if r["status"] == 429]) == 5
    assert "waiting for the Virtuous rate limit until" in result.stderr


def test_server_errors_are_retried_then_failed_and_a_dlq_retry_sends_each_once(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "faults", json={"error_rate": 1.0, "error_statuses": [503]})
    donations_csv(tmp_path / "donations.csv", 4)
    recipe = write_recipe(gifts_recipe(batch=10))
    first = report(invoke("run", recipe, "--json"))
    assert first["outcomes"]["failed"] == 4
    assert "503" in first["problems"][0]["reason"]
    # The retry policy's 5 attempts, then 5 more asking Virtuous before declaring them failed.
    assert len(virtuous.requests("/api/v2/Gift/Transactions")) == 10
    virtuous.control("POST", "faults", json={"error_rate": 0})
    again = report(invoke("dlq", "retry", recipe, "--json"))
    assert again["outcomes"]["written"] == 4
    virtuous.import_now()
    assert sorted(g["transactionId"] for g in virtuous.state()["gifts"]) == [
        f"g-{n}" for n in range(1, 5)
    ]


def test_faults_never_lose_or_double_a_gift(monkeypatch, write_recipe, invoke, tmp_path) -> None:
    faults = {
        "error_rate": 0.2,
        "drop_rate": 0.1,
        "lost_response_rate": 0.15,
        "timeout_rate": 0.05,
        "hang_seconds": 2,
        "rate_limit_storm": 3,
        "storm_retry_after": 1,
        "seed": 7,
    }
    with serving(monkeypatch, faults=faults) as emulator:
        donations_csv(tmp_path / "donations.csv", 60)
        text = gifts_recipe(batch=10).replace(
            "    batch_size:", "    timeout_seconds: 0.5\n    batch_size:"
        )
        recipe = write_recipe(text)
        first = report(invoke("run", recipe, "--json"))
        if not first["ok"]:  # retries spent on a batch: it waits in the dead-letter queue
            calm = {"error_rate": 0, "drop_rate": 0, "lost_response_rate": 0, "timeout_rate": 0}
            emulator.control("POST", "faults", json=calm)
            assert report(invoke("dlq", "retry", recipe, "--json"))["ok"]
        lost = [r for r in emulator.requests() if r["status"] is None]
        emulator.import_now()
        gifts = emulator.state()["gifts"]
    assert lost  # some writes were processed without the client hearing back
    ids = sorted(g["transactionId"] for g in gifts)
    assert ids == sorted(f"g-{n}" for n in range(1, 61))


def test_two_processes_sharing_a_key_stay_within_the_budget(monkeypatch, tmp_path) -> None:
    root = Path(__file__).resolve().parents[3]
    with running(rate_limit=4, rate_window_seconds=1) as emulator:
        procs = []
        for name in ("one", "two"):
            folder = tmp_path / name
            folder.mkdir()
            donations_csv(folder / "donations.csv", 30, start=1 if name == "one" else 100)
            (folder / "recipe.yaml").write_text(
                gifts_recipe(batch=5, limit=4, window=1).replace("name: gifts", f"name: {name}")
            )
            env = {
                **os.environ,
                "VIRTUOUS_BASE_URL": emulator.url,
                "VIRTUOUS_API_KEY": KEY,
                "PYTHONPATH": str(root),
                "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1",
            }
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "from core.cli import main; main()",
                        "run",
                        str(folder / "recipe.yaml"),
                        "--json",
                        "--state",
                        str(tmp_path / "shared.db"),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [p.communicate(timeout=120) for p in procs]
        log = emulator.requests()
    assert all(p.returncode == 0 for p in procs), outputs
    assert [r for r in log if r["status"] == 429] == []
    assert len([r for r in log if r["path"] in TRANSACTIONS]) == 12


RICH_RECIPE = """\
version: 1
name: rich
source: {use: file.jsonl, with: {path: gifts.jsonl, key: id}}
map:
  transactionSource: "'Web'"
  amount: record.amount | to_decimal
  giftDate: record.date
  giftType: "'Credit'"
  frequency: record.frequency
  recurringGiftTransactionId: record.schedule
  contact:
    referenceId: record.donor
    firstname: "'Ada'"
    lastname: "'Lovelace'"
    email: "'ada@example.org'"
  designations:
    - code: "'GEN'"
      amountDesignated: record.amount | to_decimal
  tributeDedication:
    tributeType: "'In Memory Of'"
    tributeFirstName: record.honoree
    tributeLastName: "'Babbage'"
  customFields:
    Acknowledgment Type: record.ack
sink:
  use: virtuous.gift_transactions
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def test_designations_recurring_tributes_custom_fields_and_references_arrive(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": [{"name": "General", "code": "GEN"}]})
    first = {"id": "sub-1", "amount": "20.00", "date": "2025-04-01", "frequency": "Monthly"}
    second = {"id": "inv-2", "amount": "20.00", "date": "2025-05-01", "schedule": "sub-1"}
    rows = [
        row | {"donor": "donor-42", "honoree": "Charles", "ack": "Email"} for row in (first, second)
    ]
    write_jsonl(tmp_path / "gifts.jsonl", rows)
    result = report(invoke("run", write_recipe(RICH_RECIPE), "--json"))
    assert result["outcomes"]["written"] == 2
    body = json.loads(virtuous.requests("/api/v2/Gift/Transactions")[0]["body"])
    assert body["transactionSource"] == "Web"  # at the top of the batch, as public clients send
    sent = body["transactions"]
    assert sent[0]["transactionId"] == "sub-1"  # defaulted to the source key
    assert sent[0]["amount"] == "20.00"  # Decimal, as a string
    assert sent[0]["contact"]["referenceId"] == "donor-42"
    assert virtuous.import_now()["giftsCreated"] == 2
    gift = virtuous.gift("Web", "sub-1").json()
    assert [(d["projectCode"], d["amountDesignated"]) for d in gift["giftDesignations"]] == [
        ("GEN", 20.0)
    ]
    assert (gift["tributeType"], gift["tribute"]) == ("In Memory Of", "Charles Babbage")
    assert {"name": "Acknowledgment Type", "value": "Email"}.items() <= gift["customFields"][
        0
    ].items()
    payments = virtuous.gift("Web", "inv-2").json()["recurringGiftPayments"]
    schedules = {p["id"] for p in payments + gift["recurringGiftPayments"]}
    assert len(schedules) == 1  # both payments belong to one recurring gift
    contacts = virtuous.state()["contacts"]
    assert len(contacts) == 1
    assert contacts[0]["id"] == gift["contactId"]


def test_without_a_transaction_source_the_recipe_name_is_used(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    # Every transaction carries the dedup pair: a recipe that maps no transactionSource (and
    # sets no transaction_source) still has its gifts sent, under the recipe's name.
    write_jsonl(
        tmp_path / "gifts.jsonl",
        [{"id": "w-1", "amount": "5.00", "date": "2025-04-01", "donor": "d-1"}],
    )
    recipe = RICH_RECIPE.replace("  transactionSource: \"'Web'\"\n", "")
    virtuous.control("POST", "seed", json={"projects": [{"name": "General", "code": "GEN"}]})
    result = report(invoke("run", write_recipe(recipe), "--json"))
    assert result["outcomes"]["written"] == 1
    sent = json.loads(virtuous.requests("/api/v2/Gift/Transaction")[0]["body"])
    assert (sent["transactionSource"], sent["transactionId"]) == ("rich", "w-1")


ASIDE = RICH_RECIPE.replace("    referenceId: record.donor\n", "    id: record.contact\n")


def test_a_gift_the_import_sets_aside_is_listed_by_status_with_virtuous_reason(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    seeded = virtuous.control(
        "POST",
        "seed",
        json={
            "projects": [{"name": "General", "code": "GEN"}],
            "contacts": [{"contactType": "Household", "lastName": "Lovelace"}],
        },
    )
    (contact,) = seeded["contacts"]
    rows = [
        {"id": "q-1", "amount": "5.00", "date": "2025-04-01", "contact": contact},
        {"id": "q-2", "amount": "6.00", "date": "2025-04-01", "contact": 999999},
    ]
    write_jsonl(tmp_path / "gifts.jsonl", rows)
    recipe = write_recipe(ASIDE)
    result = report(invoke("run", recipe, "--json"))
    assert result["outcomes"] == {**result["outcomes"], "written": 2}
    virtuous.import_now()
    assert virtuous.gift("Web", "q-1").status_code == 200
    assert virtuous.gift("Web", "q-2").status_code == 404  # set aside: never a gift
    status = invoke("status", recipe, "--json")
    assert status.exit_code == 1  # a gift needs a person
    (row,) = json.loads(status.stdout)["needs_update"]
    assert (row["key"], row["transactionSource"], row["transactionId"]) == ("q-2", "Web", "q-2")
    assert row["reason"] == "contact 999999 does not exist"
    text = invoke("status", recipe)
    assert "needs update Web/q-2: contact 999999 does not exist" in text.output


def test_a_gift_changed_after_it_was_written_is_applied_by_hand_then_resolved(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    """Virtuous's transactions cannot update a gift: the run says to apply the change by hand
    and then `dlq resolve` it (not `dlq retry`, which would only find it changed again)."""
    donations_csv(tmp_path / "donations.csv", 3)
    recipe = write_recipe(gifts_recipe())
    assert invoke("run", recipe).exit_code == 0
    donations_csv(tmp_path / "donations.csv", 3, **{"g-2": {"cents": "5000"}})
    changed = invoke("run", recipe)
    assert changed.exit_code == 1
    assert "1 record(s) changed after they were written, and the sink cannot update" in (
        changed.stderr
    )
    assert f"then `connector dlq resolve {recipe} KEY...` records it" in changed.stderr
    assert "dlq retry" not in changed.stderr
    # a script reads the same count: the change waits for a person, run after run
    assert report(invoke("run", recipe, "--json"))["to_apply"] == 1
    [letter] = json.loads(invoke("dlq", "list", recipe, "--json").stdout)
    assert letter["next"] == f"connector dlq resolve {recipe} g-2"
    assert invoke("dlq", "resolve", recipe, "g-1").exit_code == 2  # no change waits for it
    resolved = invoke("dlq", "resolve", recipe, "g-2")
    assert resolved.exit_code == 0, resolved.output
    again = report(invoke("run", recipe, "--json"))
    assert again["ok"]
    assert again["outcomes"]["unchanged"] == 3
    assert invoke("dlq", "list", recipe, "--json").stdout.strip() == "[]"
    assert virtuous.state()["counts"]["pending"] == 3  # nothing was sent again
