"""``connector sandbox``: every registered emulator on loopback, seeded, with the variables that
point recipes at them.

A connector offers its emulator to the sandbox by subclassing :class:`SandboxEmulator` and
registering it, lazily, through ``connector_register_emulators``::

    @hookimpl
    def connector_register_emulators():
        return [Lazy("pledges", "connector_pledges.emulator.sandbox:PledgesSandbox")]

The sandbox talks to each emulator through the control plane every emulator keeps under
``/_emulator/`` (:mod:`core.emulation`): ``POST /_emulator/seed`` with :meth:`seed_data`, ``POST
/_emulator/faults`` with :data:`FAULTS` when ``--faults`` is given, ``GET /_emulator/state`` for
:meth:`SandboxEmulator.holdings`, and ``POST /_emulator/webhooks`` to subscribe a webhook recipe
of a service whose subscriptions are made in its dashboard (:mod:`core.emulation.subscribers`).
This module imports neither the emulators nor uvicorn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from starlette.types import ASGIApp

#: What ``--faults`` switches on in every emulator: enough 5xx, 429s and lost answers to watch
#: retries and the services' dedup keys at work, few enough that a run still ends.
FAULTS: Mapping[str, Any] = {
    "error_rate": 0.1,
    "rate_limit_storm": 2,
    "storm_retry_after": 1,
    "lost_response_rate": 0.05,
    "seed": 7,
}


@dataclass(frozen=True)
class Rounds:
    """What the sandbox ran, handed to :meth:`SandboxEmulator.after_first_round`."""

    #: the copies of the recipes, in the sandbox's own folder, in the order they ran
    recipes: list[Path]
    #: the state database the runs used: a path, or a database URL
    state: str
    #: runs ``connector ARGS...`` in this process (``--state`` is added); returns its exit code
    invoke: Callable[[list[str]], int]


class SandboxEmulator:
    """One service's emulator as ``connector sandbox`` starts it.

    Set :attr:`name` (what ``--service`` takes; the name it is registered under) and
    :attr:`description`, and implement :meth:`create_app` and :meth:`variables`; the rest is
    optional.
    """

    name: ClassVar[str] = ""
    #: one line: the service this emulates
    description: ClassVar[str] = ""

    def create_app(self) -> ASGIApp:
        """A fresh emulator app (its module is imported only when the sandbox starts it)."""
        raise NotImplementedError

    def variables(self, url: str) -> dict[str, str]:
        """The environment variables that point a recipe at the emulator served at ``url``:
        its base URL, and credentials it accepts."""
        raise NotImplementedError

    def seed_data(self) -> Mapping[str, Any]:
        """The body of ``POST /_emulator/seed``: realistic records to start with."""
        return {}

    def seeded(self) -> str:
        """One line: what :meth:`seed_data` holds ("12 charges from 8 donors")."""
        return ""

    def after_first_round(self, url: str, rounds: Rounds) -> Iterable[str]:
        """Called once the recipes have run once (before ``--twice`` runs them again): what the
        service does on its own between two runs (a nightly import). Returns lines to print."""
        return ()

    def provoke(self, url: str) -> str | None:
        """Make the service announce one change by webhook, as a donor or a user would make it
        (a new donation, a charge), for ``connector sandbox --run`` of a webhook recipe; one
        line on what was done. None: the service sends no webhooks."""
        return None

    def holdings(self, state: Mapping[str, Any]) -> str | None:
        """One line on what the emulator holds, from ``GET /_emulator/state``, after the runs."""
        return None
