"""The Virtuous emulator's work per request does not grow with what it holds.

Counted, not timed: every list of held transactions and every table of records counts the
passes made over it. A request that passes over everything held makes a run of N gifts cost N²
(100k gifts took 44.5 s instead of 9.5 s); bench/emulator_scale.py times it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from connectors.virtuous.emulator.app import EmulatorSettings, create_app
from connectors.virtuous.emulator.store import EmulatorState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = "key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
SETTINGS: dict[str, Any] = {"api_keys": {KEY: "org-1"}, "rate_limit": 1_000_000}


class Passes:
    """How many times the tests' lists and tables were gone through."""

    count = 0


class CountedList(list[Any]):
    def __iter__(self) -> Iterator[Any]:
        Passes.count += 1
        return super().__iter__()


def count_passes(state: EmulatorState) -> None:
    """Make the holding area's lists and the record tables count passes over them."""
    for name in ("pending", "needs_update", "imported"):
        setattr(state, name, CountedList(getattr(state, name)))
    for name in ("gifts", "individuals", "addresses", "contacts"):
        setattr(state, name, _counted(getattr(state, name)))


def _counted(table: dict[int, Any]) -> dict[int, Any]:
    """``table``, counting each pass over its values, items or keys."""

    class Counted(type(table)):  # type: ignore[misc]
        def values(self) -> Any:
            Passes.count += 1
            return super().values()

        def items(self) -> Any:
            Passes.count += 1
            return super().items()

        def __iter__(self) -> Iterator[Any]:
            Passes.count += 1
            return super().__iter__()

    if type(table) is dict:
        return Counted(table)
    table.__class__ = Counted  # keeps its indexes
    return table


def gift(tid: str, contact: str = "cus_1") -> dict[str, Any]:
    return {
        "transactionId": tid,
        "giftDate": "2025-04-05",
        "giftType": "Credit",
        "amount": "25.00",
        "contact": {"referenceId": contact, "firstname": "Ada", "lastname": "Lovelace"},
    }


def batch(first: int, size: int) -> dict[str, Any]:
    txs = [gift(f"g-{n}", f"cus_{n % 50}") for n in range(first, first + size)]
    return {"transactionSource": "CSV", "transactions": txs}


def test_a_batch_is_checked_for_repeats_without_a_pass_over_what_is_held() -> None:
    app = create_app(EmulatorSettings(**SETTINGS))
    client, state = TestClient(app, headers=AUTH), app.state.emulator
    for first in range(0, 2000, 100):  # held: pending, then imported as gifts
        assert client.post("/api/v2/Gift/Transactions", json=batch(first, 100)).status_code == 200
        if first == 1000:
            assert client.post("/_emulator/import").json()["giftsCreated"] == 1100
    count_passes(state)
    Passes.count = 0

    assert client.post("/api/v2/Gift/Transactions", json=batch(5000, 100)).status_code == 200
    repeat = client.post("/api/v2/Gift/Transactions", json=batch(10, 1))  # imported, as a gift
    held = client.post("/api/v2/Gift/Transactions", json=batch(1500, 1))  # still pending

    assert Passes.count == 0
    assert "already been submitted" in repeat.json()["message"]
    assert "already been submitted" in held.json()["message"]


def test_an_import_and_lookups_by_transaction_and_contact_do_not_pass_over_every_gift() -> None:
    app = create_app(EmulatorSettings(**SETTINGS))
    client, state = TestClient(app, headers=AUTH), app.state.emulator
    for first in range(0, 1000, 100):
        client.post("/api/v2/Gift/Transactions", json=batch(first, 100))
    assert client.post("/_emulator/import").json()["giftsCreated"] == 1000
    count_passes(state)
    Passes.count = 0

    found = client.get("/api/Gift/CSV/g-321")
    contact_id = found.json()["contactId"]
    reversal = client.post(
        "/api/Gift/ReversingTransaction",
        json={"reversedGiftId": found.json()["id"], "giftDate": "2025-04-06"},
    )
    people = client.get(f"/api/ContactIndividual/ByContact/{contact_id}")

    assert found.status_code == 200
    assert found.json()["transactionId"] == "g-321"
    assert reversal.status_code == 200, reversal.text
    assert people.status_code == 200
    assert Passes.count == 0


def _import_passes(gifts: int) -> int:
    """Passes an import of ``gifts`` gifts makes, over 300 contacts already there: half of the
    gifts name a contact by reference, half by email only (new ones too)."""
    app = create_app(EmulatorSettings(**SETTINGS))
    client, state = TestClient(app, headers=AUTH), app.state.emulator
    for first in (0, 100, 200):
        assert client.post("/api/v2/Gift/Transactions", json=batch(first, 100)).status_code == 200
    client.post("/_emulator/import")
    txs = [gift(f"n-{n}", f"cus_{n}") for n in range(0, gifts, 2)]
    for n in range(1, gifts, 2):
        txs.append(gift(f"n-{n}") | {"contact": {"email": f"d{n % 400}@example.org"}})
    for first in range(0, gifts, 100):
        body = {"transactionSource": "CSV", "transactions": txs[first : first + 100]}
        assert client.post("/api/v2/Gift/Transactions", json=body).status_code == 200
    count_passes(state)
    Passes.count = 0
    assert client.post("/_emulator/import").json()["giftsCreated"] == gifts
    return Passes.count


def test_an_import_makes_as_many_passes_for_ten_gifts_as_for_two_hundred() -> None:
    assert _import_passes(200) == _import_passes(10)
