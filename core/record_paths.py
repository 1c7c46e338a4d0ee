"""The ``record.`` paths a recipe reads that no record had: a typo such as ``record.emial``.

A mapping reads a missing path as ``None`` (a field may be absent from some records), so a typo
maps every record to null without an error. :class:`MissingPaths` watches the records a run (or
``connector validate --sample``) reads and names each path that was missing from every one.

A path counts as missing where its parent is an object without the key; under a null or absent
parent (``record.customer.email`` when ``customer`` is null) the record says nothing about it.
Paths the ``map:`` reads are looked for only in records the ``filter:`` lets through. A path is
no longer looked for once a record had it, so after the first records the check costs nothing.
A path the input of one of the recipe's ``tests:`` holds is known to exist, and never named.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]

# The field names a message lists, and how many records' fields are gathered for it.
_FIELDS_SHOWN = 12
_FIELDS_FROM = 100


@dataclass
class _Watch:
    path: Path
    missing: int = 0  # records whose object at the parent lacked the key
    fields: set[str] = field(default_factory=set)  # the keys that object had instead


class MissingPaths:
    """Counts, per record path, the records that lacked it; forgets a path once one had it."""

    def __init__(
        self,
        filter_paths: Iterable[Path],
        map_paths: Iterable[Path],
        known: Collection[Path] = frozenset(),
        where: Mapping[Path, str] | None = None,
    ) -> None:
        """``known`` paths are not watched: the recipe's own tests show them (an optional field
        that a run's few records may all lack, such as a donation's designation)."""
        self._where = where or {}
        always = [p for p in _static(filter_paths) if p not in known]
        self._always = [_Watch(p) for p in always]
        self._when_mapped = [
            _Watch(p) for p in _static(map_paths) if p not in always and p not in known
        ]
        self.records = 0

    @property
    def pending(self) -> bool:
        """Whether some path has not been found yet: only then is a record worth looking at."""
        return bool(self._always or self._when_mapped)

    def observe(self, record: Mapping[str, Any], mapped: bool) -> None:
        """Look for the pending paths in ``record``; ``mapped``: the filter let it through."""
        self.records += 1
        self._always = [w for w in self._always if not _found(w, record, self.records)]
        if mapped:
            self._when_mapped = [
                w for w in self._when_mapped if not _found(w, record, self.records)
            ]

    def report(self) -> list[str]:
        """One sentence per path missing from every record that could hold it."""
        watches = [w for w in (*self._always, *self._when_mapped) if w.missing]
        shown = {w.path for w in watches}
        lines = []
        for watch in sorted(watches, key=lambda w: w.path):
            if any(watch.path[:n] in shown for n in range(1, len(watch.path))):
                continue  # record.a.b is missing because record.a is: name only record.a
            where = self._where.get(watch.path)
            lines.append(f"{where}: {_sentence(watch)}" if where else _sentence(watch))
        return lines


def paths_in(records: Iterable[Any]) -> set[Path]:
    """Every path that holds a value in ``records`` (a recipe's test inputs): ``("a", 0, "b")``."""
    found: set[Path] = set()
    stack: list[tuple[Path, Any]] = [((), record) for record in records]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping):
            children = [((*path, k), v) for k, v in value.items() if isinstance(k, str)]
        elif isinstance(value, list):
            children = [((*path, i), v) for i, v in enumerate(value)]
        else:
            continue
        found.update(child for child, _ in children)
        stack.extend(children)
    return found


def _static(paths: Iterable[Path]) -> list[Path]:
    """Paths worth watching: those that end in a name (an index out of range is no typo)."""
    return [p for p in dict.fromkeys(paths) if p and isinstance(p[-1], str)]


def _found(watch: _Watch, record: Mapping[str, Any], seen: int) -> bool:
    parent: Any = record
    for key in watch.path[:-1]:
        if isinstance(parent, Mapping):
            parent = parent.get(key)
        elif (
            isinstance(parent, list) and isinstance(key, int) and -len(parent) <= key < len(parent)
        ):
            parent = parent[key]
        else:
            return False  # under a null parent: this record says nothing
    if not isinstance(parent, Mapping):
        return False
    if watch.path[-1] in parent:
        return True
    watch.missing += 1
    if seen <= _FIELDS_FROM:
        watch.fields.update(key for key in parent if isinstance(key, str))
    return False


def _sentence(watch: _Watch) -> str:
    dotted = "record" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in watch.path
    )
    records = "the one record" if watch.missing == 1 else f"all {watch.missing} records"
    names = sorted(watch.fields)
    listed = ", ".join(names[:_FIELDS_SHOWN]) + (", ..." if len(names) > _FIELDS_SHOWN else "")
    fields = f"; fields: {listed}" if listed else "; it had no fields"
    return f"{dotted} was missing in {records}{fields}"


#: Said once after the paths a report names: how to tell a typo from an optional field.
ADVICE = (
    "a misspelt field? If it is an optional one, give a test of the recipe an input that has it"
)
