"""Donorbox: donations from its REST API, and a local emulator of it."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.donorbox.donations import Donations
from core.hookspecs import hookimpl
from core.source import Source


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [Donations]
