"""The registered emulators, and serving a chosen few of them on loopback, seeded."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.emulation.control import EmulatorRefused, control
from core.errors import PluginError, RecipeError
from core.registry import Catalog, named_classes
from core.sandbox import FAULTS, SandboxEmulator

if TYPE_CHECKING:
    import pluggy

    from core.emulation import EmulatorServer


def registered_emulators(pm: pluggy.PluginManager) -> Catalog[type[SandboxEmulator]]:
    """Every emulator the plugins register, by service name; none is imported yet."""
    catalog: Catalog[type[SandboxEmulator]]
    catalog = named_classes(pm, "connector_register_emulators", "emulator", SandboxEmulator)
    return catalog


def chosen(
    catalog: Catalog[type[SandboxEmulator]], services: Sequence[str]
) -> list[SandboxEmulator]:
    """The emulators named by ``--service`` (every registered one when none is named)."""
    names = list(dict.fromkeys(services)) or catalog.names()
    return [catalog.get(name, where="--service")() for name in names]


@dataclass
class Served:
    """One emulator running on loopback."""

    emulator: SandboxEmulator
    server: EmulatorServer

    @property
    def name(self) -> str:
        return self.emulator.name

    @property
    def url(self) -> str:
        return self.server.url

    def variables(self) -> dict[str, str]:
        return self.emulator.variables(self.url)

    def control(self, method: str, what: str, body: Any = None) -> Any:
        """Call the emulator's control plane (``/_emulator/WHAT``); its answer, as JSON."""
        return control(self.url, method, what, body)


@contextmanager
def serving(
    emulators: Sequence[SandboxEmulator],
    *,
    port: int = 0,
    seeds: Mapping[str, str] | None = None,
    faults: bool = False,
) -> Iterator[list[Served]]:
    """Serve ``emulators`` on 127.0.0.1 (from ``port`` up, or free ports), each seeded with its
    own sample data or with the JSON text ``seeds[name]``; stopped on leaving."""
    from core.emulation import EmulatorServer

    with ExitStack() as stack:
        served = []
        for number, emulator in enumerate(emulators):
            server = EmulatorServer(emulator.create_app(), port=port + number if port else 0)
            served.append(Served(emulator, stack.enter_context(server)))
        for one in served:
            _seed(one, (seeds or {}).get(one.name))
            if faults:
                one.control("POST", "faults", dict(FAULTS))
        yield served


def _seed(served: Served, given: str | None) -> None:
    where = f"--seed {served.name}=..."
    body = served.emulator.seed_data()
    if given is not None:
        try:
            body = json.loads(given)
        except ValueError as error:
            msg = f"the seed for {served.name} is not JSON: {error}"
            raise RecipeError(msg, where=where) from None
    if not body:
        return
    try:
        served.control("POST", "seed", body)
    except EmulatorRefused as refused:
        if given is None:  # the emulator's own sample data: a bug in the plugin
            msg = f"the {served.name} emulator refused its own sample data: {refused}"
            raise PluginError(msg) from None
        msg = f"the {served.name} emulator refused the seed: {refused}"
        raise RecipeError(msg, where=where) from None
