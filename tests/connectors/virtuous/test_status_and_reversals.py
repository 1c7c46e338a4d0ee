"""Where did my gifts go (connector status), and refunds as reversing transactions."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import donations_csv, gifts_recipe, report

REFUNDS = """\
version: 1
name: refunds
source: {use: file.jsonl, with: {path: refunds.jsonl, key: id}}
map:
  transactionSource: "'Test'"
  transactionId: record.gift
  giftDate: record.date
  amount: record.cents | minor_to_major('usd')
  originalAmount: record.original_cents | minor_to_major('usd')
sink:
  use: virtuous.gift_reversals
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def test_status_follows_gifts_from_pending_to_imported(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 3)
    recipe = write_recipe(gifts_recipe())
    report(invoke("run", recipe, "--json"))
    pending = invoke("status", recipe, "--json")
    assert pending.exit_code == 0
    assert len(json.loads(pending.stdout)["pending"]) == 3
    overdue = invoke("status", recipe, "--json", "--grace-hours", "0")
    assert overdue.exit_code == 1
    assert len(json.loads(overdue.stdout)["missing"]) == 3
    virtuous.import_now()
    done = json.loads(invoke("status", recipe, "--json").stdout)
    assert len(done["imported"]) == 3
    ids = {row["gift_id"] for row in done["imported"]}
    assert ids == {str(g["id"]) for g in virtuous.state()["gifts"]}
    lookups = len(virtuous.requests())
    again = json.loads(invoke("status", recipe, "--json").stdout)
    assert len(again["imported"]) == 3
    assert len(virtuous.requests()) == lookups  # the ledger remembered the gift ids


def test_status_needs_only_the_sinks_credentials(
    virtuous, monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    # A Stripe-to-Virtuous recipe: status talks to Virtuous alone, so no Stripe key is needed.
    donations_csv(tmp_path / "donations.csv", 2)
    recipe = write_recipe(gifts_recipe())
    report(invoke("run", recipe, "--json"))
    text = (
        Path(recipe)
        .read_text()
        .replace(
            "with: {path: donations.csv, key: id}",
            'with: {path: donations.csv, key: id, encoding: "${SOURCE_ENCODING}"}',
        )
    )
    Path(recipe).write_text(text)
    monkeypatch.delenv("SOURCE_ENCODING", raising=False)
    result = invoke("status", recipe, "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["pending"]) == 2
    monkeypatch.delenv("VIRTUOUS_API_KEY")
    missing = invoke("status", recipe)
    assert missing.exit_code == 2
    assert "VIRTUOUS_API_KEY is not set" in missing.stderr


def _refunds(tmp_path: Path, *rows: dict[str, object]) -> None:
    write_jsonl(tmp_path / "refunds.jsonl", rows)


def test_a_full_refund_reverses_the_right_gift(virtuous, write_recipe, invoke, tmp_path) -> None:
    donations_csv(tmp_path / "donations.csv", 2)
    report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
    virtuous.import_now()
    _refunds(
        tmp_path,
        {"id": "re_1", "gift": "g-2", "date": "2025-03-05", "cents": 1002, "original_cents": 1002},
    )
    refunds = write_recipe(REFUNDS, "refunds.yaml")
    result = report(invoke("run", refunds, "--json"))
    assert result["outcomes"]["written"] == 1
    original = virtuous.gift("Test", "g-2").json()
    reversals = [
        g
        for g in virtuous.state()["gifts"]
        if g.get("reversedGiftId") == original["id"]
        or (g["amount"] < 0 and g["id"] != original["id"])
    ]
    assert len(reversals) == 1
    assert report(invoke("run", refunds, "--json"))["outcomes"]["unchanged"] == 1


def test_a_refund_before_the_gift_exists_waits_for_review(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    donations_csv(tmp_path / "donations.csv", 1)
    report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
    _refunds(tmp_path, {"id": "re_1", "gift": "g-1", "date": "2025-03-05", "cents": 1001})
    refunds = write_recipe(REFUNDS, "refunds.yaml")
    early = report(invoke("run", refunds, "--json"))
    assert early["outcomes"]["needs_review"] == 1
    assert "not in Virtuous yet" in early["problems"][0]["reason"]
    virtuous.import_now()
    later = report(invoke("dlq", "retry", refunds, "--json"))
    assert later["outcomes"]["written"] == 1


def test_a_partial_refund_is_left_for_a_person(virtuous, write_recipe, invoke, tmp_path) -> None:
    donations_csv(tmp_path / "donations.csv", 1)
    report(invoke("run", write_recipe(gifts_recipe(), "gifts.yaml"), "--json"))
    virtuous.import_now()
    _refunds(tmp_path, {"id": "re_1", "gift": "g-1", "date": "2025-03-05", "cents": 500})
    result = report(invoke("run", write_recipe(REFUNDS, "refunds.yaml"), "--json"))
    assert result["outcomes"]["needs_review"] == 1
    assert "partial refund of 5.00" in result["problems"][0]["reason"]
    assert all(g["amount"] > 0 for g in virtuous.state()["gifts"])
