"""Name -> component maps built from the registration hooks, with the plugin behind each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from core.errors import PluginError, UnknownComponentError
from core.sink import Sink
from core.source import Source

T = TypeVar("T")


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded; reported, never fatal."""

    name: str
    error: str


@dataclass
class Catalog(Generic[T]):
    """Registered components of one kind: ``source``, ``sink`` or ``transform``."""

    kind: str
    items: dict[str, T] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, item: T, owner: str) -> None:
        if name in self.items and self.owners[name] != owner:
            msg = (
                f"{self.kind} {name!r} is registered by both {self.owners[name]!r} and {owner!r};"
                " uninstall or disable one (CONNECTOR_DISABLE_PLUGINS)"
            )
            raise PluginError(msg)
        self.items[name] = item
        self.owners[name] = owner

    def get(self, name: str, *, where: str | None = None, hint: str | None = None) -> T:
        try:
            return self.items[name]
        except KeyError:
            raise UnknownComponentError(
                self.kind, name, self.items, where=where, hint=hint
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.items


@dataclass
class Registry:
    """Every source, sink and transform the installed plugins provide."""

    sources: Catalog[type[Source]]
    sinks: Catalog[type[Sink]]
    transforms: Catalog[Callable[..., Any]]
    failures: list[PluginFailure]

    @classmethod
    def build(cls, pm: pluggy.PluginManager, failures: Iterable[PluginFailure] = ()) -> Registry:
        sources: Catalog[type[Source]] = Catalog("source")
        sinks: Catalog[type[Sink]] = Catalog("sink")
        transforms: Catalog[Callable[..., Any]] = Catalog("transform")
        for owner, classes in _results(pm, "connector_register_sources"):
            for source in classes:
                _check_subclass(source, Source, owner)
                sources.add(source.name, source, owner)
        for owner, classes in _results(pm, "connector_register_sinks"):
            for sink in classes:
                _check_subclass(sink, Sink, owner)
                sinks.add(sink.name, sink, owner)
        for owner, mapping in _results(pm, "connector_register_transforms"):
            for name, function in dict(mapping).items():
                transforms.add(name, function, owner)
        return cls(sources, sinks, transforms, list(failures))

    def failure_hint(self) -> str | None:
        """Appended to "unknown component" errors: a missing name may be a broken plugin's."""
        if not self.failures:
            return None
        names = ", ".join(f"{f.name!r} ({f.error})" for f in self.failures)
        return f"plugins that failed to load: {names}"


def _results(pm: pluggy.PluginManager, hook_name: str) -> list[tuple[str, Any]]:
    """Call each implementation separately, so every result keeps the name of its plugin."""
    caller = getattr(pm.hook, hook_name)
    results = []
    for impl in caller.get_hookimpls():
        value = impl.function()
        if value is not None:
            results.append((impl.plugin_name, value if isinstance(value, Mapping) else list(value)))
    return results


def _check_subclass(item: object, base: type, owner: str) -> None:
    if not (isinstance(item, type) and issubclass(item, base)) or not getattr(item, "name", None):
        msg = f"plugin {owner!r} registered {item!r}, which is not a named {base.__name__} class"
        raise PluginError(msg)
