"""Virtuous CRM+: sources, sinks, the `connector status` command and a local emulator.

Sources, sinks and transforms are registered by name and imported when a recipe uses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from core.hookspecs import hookimpl
from core.registry import Lazy

if TYPE_CHECKING:
    import click


@hookimpl
def connector_register_sources() -> Iterable[Lazy]:
    return [
        Lazy("virtuous.gifts", "connectors.virtuous.queries:VirtuousGifts"),
        Lazy("virtuous.contacts", "connectors.virtuous.queries:VirtuousContacts"),
        Lazy("virtuous.webhook", "connectors.virtuous.webhook:VirtuousWebhook"),
    ]


@hookimpl
def connector_register_sinks() -> Iterable[Lazy]:
    return [
        Lazy(
            "virtuous.gift_transactions",
            "connectors.virtuous.gift_transactions:GiftTransactions",
        ),
        Lazy("virtuous.gift_reversals", "connectors.virtuous.gift_reversals:GiftReversals"),
        Lazy(
            "virtuous.contact_transactions",
            "connectors.virtuous.contact_transactions:ContactTransactions",
        ),
        Lazy("virtuous.contacts", "connectors.virtuous.contacts:Contacts"),
    ]


@hookimpl
def connector_register_transforms() -> Mapping[str, Lazy]:
    names = ("custom_field", "designations_text", "primary_individual")
    return {name: Lazy(name, f"connectors.virtuous.transforms:{name}") for name in names}


@hookimpl
def connector_register_commands(cli: click.Group) -> None:
    from connectors.virtuous.commands import status

    cli.add_command(status)


@hookimpl
def connector_register_emulators() -> Iterable[Lazy]:
    return [Lazy("virtuous", "connectors.virtuous.emulator.sandbox:VirtuousSandbox")]
