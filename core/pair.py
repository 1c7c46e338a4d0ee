"""The ``two_way:`` recipe key: two recipes that write to each other's source, and who wins.

::

    two_way:
      with: mailchimp-to-virtuous-two-way.yaml   # the paired recipe, which names this one back
      conflict:
        owner: {email_address: mailchimp, merge_fields: virtuous}   # or: conflict: latest

Each recipe of the pair reads the service the other writes to. ``conflict`` is required:
``latest`` (the record modified last wins) or ``owner`` (per field of this recipe's ``map:``,
the service whose value stands; a change made on the other side is not written). How the runner
uses it is in :mod:`core.two_way`; the rules, with a worked example, in docs/two-way.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import RecipeError, RecipeValidationError
from core.recipe_model import TWO_WAY_CHOICES, TwoWayModel
from core.sink import Sink
from core.source import Source
from core.yaml_marks import Located, load_located

_KEY = "two_way"


@dataclass(frozen=True)
class Pair:
    """A checked ``two_way:`` block."""

    #: the paired recipe's name: its ledger and views are looked up under it
    partner: str
    source_service: str
    sink_service: str
    latest: bool = False
    #: map field (a block covers its nested fields) -> the service whose value stands
    owners: dict[str, str] = field(default_factory=dict)

    def other_side_owns(self, path: str) -> bool:
        """Whether the service this recipe writes to owns the payload field ``path``."""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            owner = self.owners.get(".".join(parts[:end]))
            if owner is not None:
                return owner == self.sink_service
        return False


def service(use: str) -> str:
    """``mailchimp`` for ``mailchimp.members``."""
    return use.split(".", 1)[0]


def check_pair(
    spec: TwoWayModel,
    recipe: Path,
    located: Located,
    mapping: dict[str, Any] | None,
    components: tuple[type[Source], type[Sink]],
) -> Pair:
    """Refuse a pair whose components cannot compare records, whose partner does not name this
    recipe back or does not write to this one's source, or whose conflict policy is unclear."""
    source, sink = components
    if source.pair_seen is Source.pair_seen:
        msg = f"{source.name} cannot take part in a two-way pair: it cannot compare its records"
        raise RecipeValidationError(msg, where=located.where(("source", "use")))
    if sink.pair_fields is Sink.pair_fields:
        msg = f"{sink.name} cannot take part in a two-way pair: it cannot say what it wrote"
        raise RecipeValidationError(msg, where=located.where(("sink", "use")))
    ours = located.data
    partner = _partner(spec, recipe, located, (service(sink.name), service(source.name)))
    if partner == ours.get("name"):
        msg = "a recipe cannot be paired with itself (nor with another of the same name)"
        raise RecipeValidationError(msg, where=located.where((_KEY, "with")))
    pair = Pair(partner, service(source.name), service(sink.name))
    return _with_conflict(pair, spec.conflict, located, mapping or {})


def _partner(spec: TwoWayModel, recipe: Path, located: Located, services: tuple[str, str]) -> str:
    """The paired recipe's name, once it is shown to read what this one writes and back."""
    where = located.where((_KEY, "with"))
    path = (recipe.parent / spec.with_).resolve()
    try:
        theirs = load_located(path.read_text(encoding="utf-8"), str(path)).data
    except (OSError, UnicodeDecodeError) as error:
        msg = f"{_KEY}.with: cannot read the paired recipe {spec.with_}: {error}"
        raise RecipeValidationError(msg, where=where) from None
    except RecipeError as error:
        msg = f"{_KEY}.with: the paired recipe {spec.with_} is not valid YAML: {error}"
        raise RecipeValidationError(msg, where=where) from None
    name, back, reads, writes = _outline(theirs)
    if name is None:
        msg = f"{_KEY}.with: {spec.with_} is not a recipe (it has no name)"
        raise RecipeValidationError(msg, where=where)
    if back is None or (path.parent / back).resolve() != recipe.resolve():
        msg = (
            f"{_KEY}.with: the paired recipe {name} must name this one back"
            f" (two_way: {{with: {recipe.name}}})"
        )
        raise RecipeValidationError(msg, where=where)
    if (reads, writes) != services:
        msg = (
            f"{_KEY}.with: the recipes of a pair write to each other's source: {name} reads"
            f" {reads} and writes {writes}; this recipe reads {services[1]} and writes"
            f" {services[0]}"
        )
        raise RecipeValidationError(msg, where=where)
    return name


def _outline(data: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """A recipe's name, the file its ``two_way.with`` names, and the services it reads and
    writes: what a pair checks of its partner without loading it."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None, None, None, None
    pair, source, sink = (data.get(k) for k in (_KEY, "source", "sink"))
    back = pair.get("with") if isinstance(pair, dict) else None
    reads = service(str(source.get("use"))) if isinstance(source, dict) else None
    writes = service(str(sink.get("use"))) if isinstance(sink, dict) else None
    return data["name"], back if isinstance(back, str) else None, reads, writes


def _with_conflict(pair: Pair, conflict: Any, located: Located, mapping: dict[str, Any]) -> Pair:
    where = located.where((_KEY, "conflict"))
    if conflict == "latest":
        return Pair(pair.partner, pair.source_service, pair.sink_service, latest=True)
    if not (isinstance(conflict, dict) and set(conflict) == {"owner"}):
        said = "is required" if conflict is None else f"cannot be {conflict!r}"
        msg = f"{_KEY}.conflict {said}; valid: {TWO_WAY_CHOICES}"
        raise RecipeValidationError(msg, where=where)
    owners = conflict["owner"]
    if not isinstance(owners, dict) or not owners:
        msg = f"{_KEY}.conflict.owner: give each field of map: the service whose value stands"
        raise RecipeValidationError(msg, where=located.where((_KEY, "conflict", "owner")))
    fields = sorted(_paths(mapping))
    services = (pair.source_service, pair.sink_service)
    for name, owner in owners.items():
        at = located.where((_KEY, "conflict", "owner", name))
        if name not in fields:
            valid = ", ".join(fields)
            msg = f"{_KEY}.conflict.owner: {name!r} is not a field of map:; valid: {valid}"
            raise RecipeValidationError(msg, where=at)
        if owner not in services:
            valid = ", ".join(services)
            msg = f"{_KEY}.conflict.owner.{name}: {owner!r} is neither side; valid: {valid}"
            raise RecipeValidationError(msg, where=at)
    return Pair(pair.partner, *services, owners={str(k): str(v) for k, v in owners.items()})


def _paths(block: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every field of a ``map:`` block, nested ones dotted, blocks included."""
    for key, value in block.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from _paths(value, f"{path}.")
