"""How the transaction writer reads Virtuous's refusals: a duplicate only when it names the item."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from connectors.virtuous.gift_transactions import transaction_ref
from connectors.virtuous.service import VirtuousSettings, service_for
from connectors.virtuous.transactions import write_batch
from core.outcomes import Outcome, WriteItem

SERVICE = service_for(VirtuousSettings(api_key="k"))


def _items(*ids: str) -> list[WriteItem]:
    return [
        WriteItem(i, {"transactionSource": "Web", "transactionId": i, "amount": "5.00"})
        for i in ids
    ]


def _answering(*answers: dict[str, Any] | None) -> Any:
    """A send that answers each request with the next body (None: 200, empty) in turn."""
    queue = list(answers)

    def send(items: Sequence[WriteItem]) -> httpx.Response:
        body = queue.pop(0)
        request = httpx.Request("POST", "https://api.example.org/api/v2/Gift/Transactions")
        if body is None:
            return httpx.Response(200, request=request)
        return httpx.Response(400, content=json.dumps(body).encode(), request=request)

    return send


def _outcomes(items: list[WriteItem], *answers: dict[str, Any] | None) -> dict[str, Outcome]:
    results = write_batch(
        items, _answering(*answers), SERVICE, lambda i: transaction_ref(i.payload)
    )
    return {r.key: r.outcome for r in results}


def test_a_refusal_quoting_notes_that_say_already_is_a_refusal() -> None:
    refusal = {
        "message": "The request is invalid.",
        "modelState": {"transactions[1].notes": ["Donor already gave by check"]},
    }
    assert _outcomes(_items("w-1", "w-2"), refusal, None) == {
        "w-1": Outcome.WRITTEN,
        "w-2": Outcome.INVALID,
    }


def test_a_single_refusal_with_duplicate_words_but_not_the_id_is_a_refusal() -> None:
    said = {"message": "Duplicate check number: donor already gave by check #1001"}
    assert _outcomes(_items("w-1"), said) == {"w-1": Outcome.INVALID}


def test_a_refusal_naming_the_items_transaction_id_means_virtuous_holds_it() -> None:
    said = {"message": "Transaction 'w-1' from source 'Web' has already been submitted."}
    assert _outcomes(_items("w-1"), said) == {"w-1": Outcome.UNCHANGED}


def test_a_refusal_naming_another_items_id_is_not_this_items_duplicate() -> None:
    # The server blames index 0 but names w-2's id: whatever it means, w-1 is not known held.
    said = {
        "message": "The request is invalid.",
        "modelState": {"transactions[0].transactionId": ["'w-2' has already been submitted."]},
    }
    assert _outcomes(_items("w-1", "w-2"), said, None)["w-1"] is Outcome.INVALID


def test_an_id_inside_a_longer_id_is_not_named() -> None:
    said = {"message": "Transaction 'w-10' has already been submitted."}
    assert _outcomes(_items("w-1"), said) == {"w-1": Outcome.INVALID}
