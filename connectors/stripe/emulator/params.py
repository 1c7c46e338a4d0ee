"""The query parameters Stripe declares for each GET the emulator serves, and the refusal of any
other one, as real Stripe refuses it (HTTP 400 ``Received unknown parameter: <name>``).

The names are those of Stripe's OpenAPI (``paths./v1/...get.parameters``, API 2023-08-16; the same
as stripe-python 16's ``ChargeListParams`` / ``RefundListParams``); the contract test checks them
against ``tests/contracts/schemas/stripe/params.json``.
"""

from __future__ import annotations

from typing import Any

from connectors.stripe.emulator.store import StoreError

_PAGING = frozenset({"created", "ending_before", "expand", "limit", "starting_after"})
_RETRIEVE = frozenset({"expand"})

#: Declared query parameters per route path (the emulator's own templates).
DECLARED: dict[str, frozenset[str]] = {
    "/v1/charges": _PAGING | {"customer", "payment_intent", "transfer_group"},
    "/v1/charges/{id}": _RETRIEVE,
    "/v1/customers": _PAGING | {"email", "test_clock"},
    "/v1/customers/{id}": _RETRIEVE,
    "/v1/refunds": _PAGING | {"charge", "payment_intent"},
    "/v1/refunds/{id}": _RETRIEVE,
    "/v1/balance_transactions/{id}": _RETRIEVE,
    "/v1/events": _PAGING | {"delivery_success", "type", "types"},
    "/v1/events/{id}": _RETRIEVE,
}


def refuse_undeclared(params: dict[str, Any], route: str) -> None:
    """Raise Stripe's 400 for the first parameter (in sorted order) ``route`` does not declare.
    An unknown top-level name is reported as itself, even with brackets after it."""
    unknown = sorted(set(params) - DECLARED[route])
    if unknown:
        raise StoreError(
            400,
            f"Received unknown parameter: {unknown[0]}",
            code="parameter_unknown",
            param=unknown[0],
        )
