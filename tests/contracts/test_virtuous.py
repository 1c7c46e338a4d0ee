"""What the Virtuous gift sinks send, against the fields Virtuous documents.

Virtuous publishes no machine-readable spec we can vendor: the documented fields below are those
of ``virtuous-api.md`` (§4.2 gift transaction, §4.3 batch body, §5.2 reversing transaction), each
from Virtuous's API reference pages, its HMAC sample and its n8n node, or public clients. Every
request the sinks make in a run of gifts, a lost answer and a refund must use only those fields,
so a key of our own invention (the kind the real import would silently ignore) fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import Virtuous, report, serving

GIFT_TRANSACTION = {
    "transactionSource", "transactionId", "contact", "giftDate", "cancelDate", "giftType",
    "amount", "currencyCode", "exchangeRate", "frequency", "recurringGiftTransactionId",
    "recurringGiftTransactionUpdate", "pledgeFrequency", "pledgeTransactionId",
    "pledgeExpectedFullfillmentDate", "batch", "notes", "segment", "mediaOutlet", "receiptDate",
    "receiptSegment", "cashAccountingCode", "tribute", "tributeDedication", "isPrivate",
    "isTaxDeductible", "checkNumber", "creditCardType", "nonCashGiftTypeId", "nonCashGiftType",
    "nonCashGiftDescription", "stockTickerSymbol", "stockNumberOfShares", "iraCustodian",
    "submissionUrl", "designations", "premiums", "customFields", "customObjects",
    "contactIndividualId", "passthroughContact", "giftPassthroughs", "eventAttendee",
}  # fmt: skip
GIFT_CONTACT = {
    "referenceId", "id", "name", "type", "title", "firstname", "middlename", "lastname",
    "suffix", "birthMonth", "birthDay", "birthYear", "gender", "emailType", "email",
    "phoneType", "phone", "address", "tags", "emailLists",
}  # fmt: skip
BATCH = {
    "transactionSource", "transactions", "createImport", "importName", "batch", "batchTotal",
    "defaultGiftDate", "defaultGiftType",
}  # fmt: skip
REVERSAL = {"reversedGiftId", "giftDate", "notes"}

GIFTS = """\
version: 1
name: gifts
source: {use: file.jsonl, with: {path: gifts.jsonl, key: id}}
map:
  transactionSource: "'Web'"
  amount: record.amount | to_decimal
  giftDate: record.date
  giftType: "'Credit'"
  notes: "'Donor already gave by check'"
  contact:
    referenceId: record.donor
    firstname: "'Ada'"
    lastname: "'Lovelace'"
    email: "'ada@example.org'"
    address: {address1: "'1 Main St'", city: "'Springfield'"}
  designations:
    - code: "'GEN'"
      amountDesignated: record.amount | to_decimal
sink:
  use: virtuous.gift_transactions
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}", batch_size: 3}
"""

REFUNDS = """\
version: 1
name: refunds
source: {use: file.jsonl, with: {path: refunds.jsonl, key: id}}
map:
  transactionSource: "'Web'"
  transactionId: record.gift
  giftDate: record.date
sink:
  use: virtuous.gift_reversals
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def _undocumented(body: dict[str, Any], documented: set[str], where: str) -> list[str]:
    return [f"{where}.{key}" for key in body if key not in documented]


def _transaction_problems(tx: dict[str, Any], where: str) -> list[str]:
    found = _undocumented(tx, GIFT_TRANSACTION, where)
    found += _undocumented(tx.get("contact") or {}, GIFT_CONTACT, f"{where}.contact")
    for i, item in enumerate(tx.get("designations") or []):
        found += _undocumented(item, {"id", "name", "code", "amountDesignated"}, f"{where}[{i}]")
    return found


def _problems(emulator: Virtuous) -> tuple[list[str], set[str]]:
    found, paths = [], set()
    for entry in emulator.requests():
        paths.add(f"{entry['method']} {entry['path']}")
        if not entry["body"] or entry["method"] != "POST" or entry["path"].endswith("/Query"):
            continue  # reads: the designation check's project query
        body = json.loads(entry["body"])
        if entry["path"] == "/api/v2/Gift/Transactions":
            found += _undocumented(body, BATCH, "batch")
            for i, tx in enumerate(body["transactions"]):
                found += _transaction_problems(tx, f"transactions[{i}]")
        elif entry["path"] == "/api/v2/Gift/Transaction":
            found += _transaction_problems(body, "transaction")
        elif entry["path"] == "/api/Gift/ReversingTransaction":
            found += _undocumented(body, REVERSAL, "reversal")
        else:
            found.append(f"an undocumented write: POST {entry['path']}")
    return found, paths


@pytest.mark.parametrize("validation", ["lenient", "strict"])
def test_the_gift_sinks_send_only_documented_fields(
    monkeypatch, write_recipe, invoke, tmp_path, validation
) -> None:
    faults = {"lost_response_rate": 0.3, "seed": 3}
    with serving(monkeypatch, transaction_validation=validation, faults=faults) as emulator:
        emulator.control("POST", "seed", json={"projects": [{"name": "General", "code": "GEN"}]})
        rows = [
            {"id": f"w-{n}", "amount": f"{n}.00", "date": "2025-04-01", "donor": f"d-{n}"}
            for n in range(1, 8)
        ]
        write_jsonl(tmp_path / "gifts.jsonl", rows)
        assert report(invoke("run", write_recipe(GIFTS, "gifts.yaml"), "--json"))["ok"]
        emulator.control("POST", "faults", json={"lost_response_rate": 0})
        emulator.import_now()
        write_jsonl(
            tmp_path / "refunds.jsonl", [{"id": "r-1", "gift": "w-1", "date": "2025-05-01"}]
        )
        assert report(invoke("run", write_recipe(REFUNDS, "refunds.yaml"), "--json"))["ok"]
        found, paths = _problems(emulator)
    assert found == []
    # Both transaction endpoints, the gift look-up and the reversal were exercised.
    assert {
        "POST /api/v2/Gift/Transactions",
        "POST /api/v2/Gift/Transaction",
        "GET /api/Gift/Web/w-1",
        "POST /api/Gift/ReversingTransaction",
    } <= paths
