"""Name -> component maps built from the registration hooks, with the plugin behind each.

A plugin registers a component either as the object itself or as a :class:`Lazy` reference, a
name and where to import it from. A lazy component is imported the first time a recipe (or
``connector plugins``) asks for it, so ``connector validate`` of a CSV recipe loads neither the
Stripe connector nor its models. Importing this module loads no component either.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.errors import PluginError, UnknownComponentError

if TYPE_CHECKING:
    import pluggy

    from core.sink import Sink
    from core.source import Source

T = TypeVar("T")

#: Validates a component: ``check(item, name, owner)`` returns it or raises PluginError.
Check = Callable[[object, str, str], Any]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded; reported, never fatal."""

    name: str
    error: str


@dataclass(frozen=True)
class Lazy:
    """A component registered by name, imported from ``target`` when it is first used.

    ``target`` is ``"package.module:attribute"``. A source or sink class must carry the same
    ``name`` as its reference; the registry checks it when the class is imported::

        @hookimpl
        def connector_register_sources():
            return [Lazy("example.pledges", "connector_example.pledges:Pledges")]
    """

    name: str
    target: str

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Catalog(Generic[T]):
    """Registered components of one kind: ``source``, ``sink`` or ``transform``.

    ``check(item, name, owner)`` validates a component when it is registered, or, for a
    :class:`Lazy` one, when it is imported.
    """

    def __init__(self, kind: str, check: Check | None = None) -> None:
        self.kind = kind
        self.owners: dict[str, str] = {}
        self._entries: dict[str, T | Lazy] = {}
        self._check = check

    def add(self, name: str, item: T | Lazy, owner: str) -> None:
        if name in self._entries and self.owners[name] != owner:
            msg = (
                f"{self.kind} {name!r} is registered by both {self.owners[name]!r} and {owner!r};"
                " uninstall or disable one (CONNECTOR_DISABLE_PLUGINS)"
            )
            raise PluginError(msg)
        if self._check is not None and not isinstance(item, Lazy):
            item = self._check(item, name, owner)
        self._entries[name] = item
        self.owners[name] = owner

    def get(self, name: str, *, where: str | None = None, hint: str | None = None) -> T:
        if name not in self._entries:
            raise UnknownComponentError(self.kind, name, self._entries, where=where, hint=hint)
        return self._load(name)

    @property
    def items(self) -> Mapping[str, T]:
        """Every component by name; a lazy one is imported when it is looked up."""
        return _Loading(self)

    def names(self) -> list[str]:
        """Every registered name, sorted, without importing any component."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def _load(self, name: str) -> T:
        entry = self._entries[name]
        if not isinstance(entry, Lazy):
            return entry
        owner = self.owners[name]
        try:
            loaded = entry.load()
        except Exception as error:  # noqa: BLE001 - a broken plugin is named, not a traceback
            msg = (
                f"{self.kind} {name!r} of plugin {owner!r} could not be imported from"
                f" {entry.target}: {type(error).__name__}: {error}"
            )
            raise PluginError(msg) from error
        item: T = self._check(loaded, name, owner) if self._check is not None else loaded
        self._entries[name] = item
        return item


class _Loading(Mapping[str, T]):
    """A catalog seen as a mapping: iterating imports nothing, looking a name up imports it."""

    def __init__(self, catalog: Catalog[T]) -> None:
        self._catalog = catalog

    def __getitem__(self, name: str) -> T:
        if name not in self._catalog:
            raise KeyError(name)
        return self._catalog._load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._catalog.names())

    def __len__(self) -> int:
        return len(self._catalog.owners)


@dataclass
class Registry:
    """Every source, sink and transform the installed plugins provide."""

    sources: Catalog[type[Source]]
    sinks: Catalog[type[Sink]]
    transforms: Catalog[Callable[..., Any]]
    failures: list[PluginFailure]

    @classmethod
    def build(cls, pm: pluggy.PluginManager, failures: Iterable[PluginFailure] = ()) -> Registry:
        from core.sink import Sink
        from core.source import Source

        sources: Catalog[type[Source]]
        sinks: Catalog[type[Sink]]
        sources = named_classes(pm, "connector_register_sources", "source", Source)
        sinks = named_classes(pm, "connector_register_sinks", "sink", Sink)
        transforms: Catalog[Callable[..., Any]] = Catalog("transform")
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


def named_classes(pm: pluggy.PluginManager, hook_name: str, kind: str, base: type) -> Catalog[Any]:
    """The named subclasses of ``base`` (or :class:`Lazy` references to them) that the plugins
    return from the hook ``hook_name``, by name; ``kind`` names them in errors."""
    catalog: Catalog[Any] = Catalog(kind, _subclass_of(base))
    for owner, classes in _results(pm, hook_name):
        for item in classes:
            catalog.add(_name(item, kind, owner), item, owner)
    return catalog


def _results(pm: pluggy.PluginManager, hook_name: str) -> list[tuple[str, Any]]:
    """Call each implementation separately, so every result keeps the name of its plugin."""
    caller = getattr(pm.hook, hook_name)
    results = []
    for impl in caller.get_hookimpls():
        value = impl.function()
        if value is not None:
            results.append((impl.plugin_name, value if isinstance(value, Mapping) else list(value)))
    return results


def _name(item: object, kind: str, owner: str) -> str:
    """The name a source or sink is registered under: its reference's, or its class's."""
    name = item.name if isinstance(item, Lazy) else getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        msg = f"plugin {owner!r} registered {item!r}, which is not a named {kind} class"
        raise PluginError(msg)
    return name


def _subclass_of(base: type) -> Check:
    """A check that a component is a subclass of ``base`` carrying the name it is registered as."""

    def check(item: object, name: str, owner: str) -> object:
        named = getattr(item, "name", None)
        if not (isinstance(item, type) and issubclass(item, base)) or not named:
            kind = base.__name__
            msg = f"plugin {owner!r} registered {item!r}, which is not a named {kind} class"
            raise PluginError(msg)
        if named != name:
            msg = f"plugin {owner!r} registered {name!r} as {item!r}, whose name is {named!r}"
            raise PluginError(msg)
        return item

    return check
