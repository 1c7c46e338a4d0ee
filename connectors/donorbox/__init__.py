"""Donorbox: donations from its REST API, and a local emulator of it.

The source is registered by name and imported when a recipe uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.hookspecs import hookimpl
from core.registry import Lazy


@hookimpl
def connector_register_sources() -> Iterable[Lazy]:
    return [
        Lazy("donorbox.donations", "connectors.donorbox.donations:Donations"),
        Lazy("donorbox.webhook", "connectors.donorbox.webhook:DonorboxWebhook"),
    ]


@hookimpl
def connector_register_emulators() -> Iterable[Lazy]:
    return [Lazy("donorbox", "connectors.donorbox.emulator.sandbox:DonorboxSandbox")]
