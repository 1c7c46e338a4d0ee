"""Stripe: charges and refunds through the stripe SDK, and a local emulator of its API.

The sources are registered by name and imported when a recipe uses them; they import the SDK only
when they read (:func:`connectors.stripe.service.stripe_client`), so ``validate`` never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.hookspecs import hookimpl
from core.registry import Lazy


@hookimpl
def connector_register_sources() -> Iterable[Lazy]:
    return [
        Lazy("stripe.charges", "connectors.stripe.charges:ChargesSource"),
        Lazy("stripe.refunds", "connectors.stripe.refunds:RefundsSource"),
        Lazy("stripe.webhook", "connectors.stripe.webhook:StripeWebhook"),
    ]


@hookimpl
def connector_register_emulators() -> Iterable[Lazy]:
    return [Lazy("stripe", "connectors.stripe.emulator.sandbox:StripeSandbox")]
