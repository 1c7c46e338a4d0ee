"""Every hook a plugin can implement. Nothing else lives here.

A plugin is a module (or object) with functions marked ``@hookimpl``::

    from core import hookimpl

    @hookimpl
    def connector_register_sources():
        return [MyDonations]

and is installed through the ``connector`` entry-point group::

    [project.entry-points.connector]
    myplatform = "connector_myplatform"

Every command loads every plugin's module, so a plugin's module should import little: a source or
sink may be registered as a :class:`~core.registry.Lazy` reference (its name, and where to import
it from), which is imported only when a recipe uses it, and a service's SDK belongs inside the
functions that call the service, not at the top of a module.

Implementations may accept any subset of a hook's arguments, so hooks only ever gain arguments; none
is renamed or removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from core.registry import Lazy
    from core.sandbox import SandboxEmulator
    from core.sink import Sink
    from core.source import Source
    from core.transforms import Transform

PROJECT = "connector"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration: called once while the registry is built ----------------------------------


@hookspec
def connector_register_sources() -> Iterable[type[Source] | Lazy]:
    """Return the source classes this plugin provides.

    Each class has a unique ``name`` such as ``"stripe.charges"`` and a ``Settings`` model for its
    ``with:`` block. Two plugins registering the same name is an error that names both. A
    ``Lazy("stripe.charges", "connectors.stripe.charges:ChargesSource")`` in place of a class is
    imported only when a recipe uses that name.
    """
    raise NotImplementedError


@hookspec
def connector_register_sinks() -> Iterable[type[Sink] | Lazy]:
    """Return the sink classes this plugin provides, e.g. ``"virtuous.gift_transactions"``; a
    :class:`~core.registry.Lazy` reference may stand for a class, as for sources."""
    raise NotImplementedError


@hookspec
def connector_register_transforms() -> Mapping[str, Transform | Lazy]:
    """Return named value transforms usable in a recipe's ``map:`` and ``filter:``.

    A transform is a plain function whose first argument is the value piped into it:
    ``record.amount | minor_to_major(record.currency)`` calls ``minor_to_major(amount, currency)``.
    It raises ``ValueError`` or ``TypeError`` for a value it cannot handle; the runner turns that
    into a dead letter naming the field. A ``Lazy(name, "module:function")`` value is imported
    when a recipe first uses the name.
    """
    raise NotImplementedError


@hookspec
def connector_register_emulators() -> Iterable[type[SandboxEmulator] | Lazy]:
    """Return the emulators ``connector sandbox`` starts, one per service.

    Each is a :class:`~core.sandbox.SandboxEmulator` subclass whose ``name`` is the service's
    (``"stripe"``, what ``connector sandbox --service`` takes): it builds the emulator's app, says
    which environment variables point a recipe at it, and seeds it with sample data. A
    ``Lazy("stripe", "connectors.stripe.emulator.sandbox:StripeSandbox")`` in place of a class is
    imported only when the sandbox starts that emulator.
    """
    raise NotImplementedError


# --- CLI ------------------------------------------------------------------------------------


@hookspec
def connector_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``connector`` command line.

    :param cli: the root click group; call ``cli.add_command(...)``.
    """


# --- run lifecycle --------------------------------------------------------------------------


@hookspec
def connector_record_dead_lettered(recipe: str, key: str, reason: str, field: str | None) -> None:
    """Called after a record is put in the dead-letter queue (for alerting).

    :param recipe: the recipe's name.
    :param key: the record's source key.
    :param reason: why it failed; never contains a secret.
    :param field: the offending field's dotted path, when one is to blame.
    """


@hookspec
def connector_after_run(recipe: str, report: Mapping[str, Any]) -> None:
    """Called once a run ends, with the run report (the same dict ``--json`` prints)."""
