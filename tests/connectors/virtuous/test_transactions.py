"""How the transaction writer reads Virtuous's refusals: a duplicate only when it names the item."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from connectors.virtuous.gift_transactions import transaction_ref
from connectors.virtuous.service import VirtuousSettings, service_for
from connectors.virtuous.transactions import write_batch, write_gifts
from core.errors import RetriableError
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


def _scripted(*answers: int | str) -> tuple[Any, list[list[str]]]:
    """A send answering each request in turn: a status, "lost" (processed, no answer), or
    "dup" (a refusal naming every id it was sent); it records what each request held."""
    queue, sent, held = list(answers), [], set()

    def send(items: Sequence[WriteItem]) -> httpx.Response:
        answer = queue.pop(0)
        ids = [str(i.payload["transactionId"]) for i in items]
        sent.append(ids)
        request = httpx.Request("POST", "https://api.example.org/api/v2/Gift/Transactions")
        if answer == "lost":
            held.update(ids)
            raise RetriableError("Virtuous: the connection closed before the answer")
        if answer == "dup":
            state = {
                f"transactions[{n}].transactionId": [f"Transaction '{i}' was already submitted."]
                for n, i in enumerate(ids)
            }
            body = {"message": "The request is invalid.", "modelState": state}
            return httpx.Response(400, json=body, request=request)
        return httpx.Response(int(answer), json={"message": "busy"}, request=request)

    return send, sent


def _gifts(send: Any, *ids: str) -> dict[str, Outcome]:
    results = write_gifts(
        _items(*ids), send, SERVICE, lambda i: transaction_ref(i.payload), sleep=lambda s: None
    )
    return {r.key: r.outcome for r in results}


def test_a_repeat_refused_after_a_lost_answer_counts_as_written() -> None:
    send, sent = _scripted("lost", "dup")
    assert _gifts(send, "w-1", "w-2") == {"w-1": Outcome.WRITTEN, "w-2": Outcome.WRITTEN}
    assert len(sent) == 2


def test_virtuous_is_asked_again_before_gifts_it_holds_are_declared_failed() -> None:
    # A lost answer, then 503s until the tries run out: the gifts are there all the same.
    send, sent = _scripted("lost", 503, 503, 503, 503, "dup")
    assert _gifts(send, "w-1") == {"w-1": Outcome.WRITTEN}
    assert len(sent) == 6  # five tries, then one asking again


def test_gifts_are_failed_only_when_asking_again_fails_too() -> None:
    send, _ = _scripted(*([503] * 10))
    assert _gifts(send, "w-1") == {"w-1": Outcome.FAILED}


def test_a_refusal_of_a_first_try_is_someone_elses_gift() -> None:
    send, _ = _scripted("dup")
    assert _gifts(send, "w-1") == {"w-1": Outcome.UNCHANGED}  # not ours: no money counted
