"""What the Virtuous gift sinks send, and the webhooks the emulator keeps and delivers, against
the fields Virtuous documents.

Virtuous publishes no machine-readable spec we can vendor: the documented fields below are those
of ``virtuous-api.md`` (§4.2 gift transaction, §4.3 batch body, §5.2 reversing transaction), each
from Virtuous's API reference pages, its HMAC sample and its n8n node, or public clients. Every
request the sinks make in a run of gifts, a lost answer and a refund must use only those fields,
so a key of our own invention (the kind the real import would silently ignore) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.virtuous.webhook import VirtuousWebhook, VirtuousWebhookSettings
from core.context import Context
from core.state import open_state
from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import KEY, Virtuous, report, serving
from tests.receiver import receiving

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


# --- webhooks (section 7) ----------------------------------------------------------------------

#: The subscription object, as Virtuous's webhook API pages give it.
WEBHOOK = {
    "id", "payloadUrl", "secret", "contactCreate", "contactUpdate", "giftCreate", "giftUpdate",
    "giftDelete", "projectCreate", "projectUpdate", "projectDelete", "formSubmission",
    "contactNoteCreate", "contactNoteUpdate", "contactNoteDelete", "eventCreate", "eventUpdate",
    "eventDelete", "active",
}  # fmt: skip
#: What a production receiver reads from deliveries (m-henke/Virtuous-Webhook, section 7).
DELIVERED_GIFT = {
    "id", "amount", "giftType", "giftDateFormatted", "contactId", "contactIndividualId",
    "contactPassthroughId", "segmentCode", "notes", "customFields", "giftDesignations",
}  # fmt: skip
DELIVERED_CONTACT = {
    "id", "name", "contactType", "customContactType", "contactAddresses", "contactIndividuals",
    "tags", "organizationGroups",
}  # fmt: skip


def _delivery_problems(body: dict[str, Any]) -> list[str]:
    name = "gift" if body["event"].startswith("Gift") else "contact"
    found = [f"top level: {sorted(body)}"] if set(body) != {"event", name} else []
    obj = body[name]
    missing = (DELIVERED_GIFT if name == "gift" else DELIVERED_CONTACT) - set(obj)
    found += [f"{body['event']}: no {key}" for key in sorted(missing)]
    if not isinstance(obj.get("customFields", {}), dict):
        found.append(f"{body['event']}: customFields is not a map")
    for item in obj.get("giftDesignations") or []:
        found += [
            f"designation: no {k}" for k in ("projectCode", "amountDesignated") if k not in item
        ]
    for person in obj.get("contactIndividuals") or []:
        found += [f"individual: no {k}" for k in ("id", "firstName", "lastName") if k not in person]
    return found


def test_webhook_subscriptions_and_deliveries_keep_the_documented_shapes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:

    with serving(monkeypatch, webhook_delay_scale=0.001) as emulator, receiving() as receiver:
        store = open_state(tmp_path / "state.db")
        context = Context("hooks", tmp_path, store)
        events = ["GiftCreate", "GiftUpdate", "GiftDelete"]
        settings = {"base_url": emulator.url, "api_key": KEY, "secret": "s", "events": events}
        source = VirtuousWebhook(VirtuousWebhookSettings.model_validate(settings), context)
        gifts = source.subscribe(receiver.url)
        contacts = {**settings, "events": ["ContactCreate", "ContactUpdate"]}
        VirtuousWebhook(VirtuousWebhookSettings.model_validate(contacts), context).subscribe(
            receiver.url
        )
        api = httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"})
        hook = f"/api/Webhook/{gifts.id}"
        answers = [
            api.get(hook),
            api.put(hook, json={"giftUpdate": True}),
            api.put(f"{hook}/Active", params={"active": "true"}),
        ]
        emulator.control("POST", "seed", json={"projects": [{"name": "General", "code": "GEN"}]})
        tx = {"transactionSource": "Web", "transactionId": "w-1", "amount": "10.00"}
        tx |= {
            "giftDate": "2025-04-01",
            "giftType": "Credit",
            "designations": [{"code": "GEN", "amountDesignated": "10.00"}],
        }
        tx |= {"customFields": {"Receipt Status": "Sent"}}
        tx["contact"] = {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org"}
        assert api.post("/api/v2/Gift/Transaction", json=tx).status_code == 200
        emulator.import_now()
        gift_id = emulator.state()["gifts"][0]["id"]
        assert api.put(f"/api/Gift/{gift_id}", json={"notes": "thanks"}).status_code == 200
        assert api.delete(f"/api/Gift/{gift_id}").status_code == 200
        refused = [api.put(f"{hook}/Active", params={"active": "maybe"}), api.get("/api/Webhook/9")]
        assert [r.status_code for r in refused] == [400, 404]
        assert receiver.wait_for(lambda posts: len(posts) == 4)
        source.unsubscribe(gifts.id)
        api.close()
        context.close()
        store.close()
        found, paths = _problems(emulator)
        sent = [r for r in emulator.requests("/api/Webhook") if r["method"] == "POST"]
    for answer in answers:
        assert set(answer.json()) == WEBHOOK, answer.request.url
    assert all(set(json.loads(r["body"])) <= WEBHOOK for r in sent)
    bodies = [json.loads(d.body) for d in receiver.posts()]
    assert [b["event"] for b in bodies] == [
        "ContactCreate",
        "GiftCreate",
        "GiftUpdate",
        "GiftDelete",
    ]
    assert [p for body in bodies for p in _delivery_problems(body)] == []
    assert {
        "POST /api/Webhook",
        f"GET /api/Webhook/{gifts.id}",
        f"PUT /api/Webhook/{gifts.id}",
        f"PUT /api/Webhook/{gifts.id}/Active",
        f"DELETE /api/Webhook/{gifts.id}",
        f"PUT /api/Gift/{gift_id}",
        f"DELETE /api/Gift/{gift_id}",
    } <= paths
    assert found == ["an undocumented write: POST /api/Webhook"] * 2  # its body is checked above
