"""The parameters Stripe declares for each request the emulator serves, and the refusal of any
other one, as real Stripe refuses it (HTTP 400 ``Received unknown parameter: <name>``).

The query names are those of Stripe's OpenAPI (``paths./v1/...get.parameters``, API 2023-08-16;
the same as stripe-python 16's ``ChargeListParams`` / ``RefundListParams``); the contract test
checks them against ``tests/contracts/schemas/stripe/params.json``. The form names of the two
POSTs are those of stripe-python 16's ``RefundCreateParams`` / ``ChargeCaptureParams`` /
``WebhookEndpointCreateParams`` (the stored spec subset has no request bodies), and those of the
webhook endpoint routes, which the subset does not cover, are the SDK's too.
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
    # Not in the stored spec subset: stripe-python 16's WebhookEndpointListParams and
    # WebhookEndpointRetrieveParams / WebhookEndpointDeleteParams.
    "/v1/webhook_endpoints": frozenset({"ending_before", "expand", "limit", "starting_after"}),
    "/v1/webhook_endpoints/{id}": _RETRIEVE,
}


#: Declared form parameters per POST route.
DECLARED_FORM: dict[str, frozenset[str]] = {
    "/v1/refunds": frozenset(
        {
            "amount",
            "charge",
            "currency",
            "customer",
            "expand",
            "instructions_email",
            "metadata",
            "origin",
            "payment_intent",
            "reason",
            "refund_application_fee",
            "reverse_transfer",
        }
    ),
    "/v1/webhook_endpoints": frozenset(
        {"api_version", "connect", "description", "enabled_events", "expand", "metadata", "url"}
    ),
    "/v1/charges/{id}/capture": frozenset(
        {
            "amount",
            "application_fee",
            "application_fee_amount",
            "expand",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_data",
            "transfer_group",
        }
    ),
}


def refuse_undeclared(params: dict[str, Any], declared: frozenset[str]) -> None:
    """Raise Stripe's 400 for the first parameter (in sorted order) not in ``declared``. An
    unknown top-level name is reported as itself, even with brackets after it."""
    unknown = sorted(set(params) - declared)
    if unknown:
        raise StoreError(
            400,
            f"Received unknown parameter: {unknown[0]}",
            code="parameter_unknown",
            param=unknown[0],
        )
