"""Stripe: charges and refunds through the stripe SDK, and a local emulator of its API."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.stripe.charges import ChargesSource
from connectors.stripe.refunds import RefundsSource
from core.hookspecs import hookimpl
from core.source import Source


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [ChargesSource, RefundsSource]
