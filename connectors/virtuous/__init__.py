"""Virtuous CRM+: sources, sinks, the `connector status` command and a local emulator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import click

from connectors.virtuous.contact_transactions import ContactTransactions
from connectors.virtuous.contacts import Contacts
from connectors.virtuous.gift_reversals import GiftReversals
from connectors.virtuous.gift_transactions import GiftTransactions
from connectors.virtuous.queries import VirtuousContacts, VirtuousGifts
from connectors.virtuous.transforms import custom_field, designations_text
from core.hookspecs import hookimpl
from core.sink import Sink
from core.source import Source
from core.transforms import Transform


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [VirtuousGifts, VirtuousContacts]


@hookimpl
def connector_register_sinks() -> Iterable[type[Sink]]:
    return [GiftTransactions, GiftReversals, ContactTransactions, Contacts]


@hookimpl
def connector_register_transforms() -> Mapping[str, Transform]:
    return {"custom_field": custom_field, "designations_text": designations_text}


@hookimpl
def connector_register_commands(cli: click.Group) -> None:
    from connectors.virtuous.commands import sandbox, status

    cli.add_command(status)
    cli.add_command(sandbox)
