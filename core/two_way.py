"""Two-way sync: two recipes that write to each other's source, without ping-pong.

Each recipe of a pair keeps a *view* of every record it reads (:class:`core.state.PairView`):
the record's fields as its source sees them (:meth:`core.source.Source.pair_seen`), named as a
sink writing to that service names them, its modification time, and the key of the same person
in the other system (the *link*). Before a record is written, the runner asks :class:`Pairing`:

1. Which record of the other system does it go to? The link this recipe knows, the key the sink
   can tell from the payload (:meth:`core.sink.Sink.pair_target`), or a view of the paired recipe
   linked to this record. That record's view, kept by the paired recipe, is what the other system
   held when the paired recipe last read it, or wrote it from there.
2. ``conflict: owner``: a field the other side owns takes the other system's value.
3. When the other system already holds every field the sink would write
   (:meth:`core.sink.Sink.pair_fields`), the record is an **echo**: nothing is sent. When it
   does not, and the paired recipe read it so after this record was last written, the record is
   sent again though unchanged here (a change there to a field this side owns is undone).
4. ``conflict: latest``: when the other system's record changed after this one (looked up at
   once where the sink can, :meth:`core.sink.Sink.pair_current`; else as last read), its state
   stands: the record ends as ``echo`` too, and the paired recipe carries the newer one over.

The views commit with the batch that settles their record, like ledger rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.digest import exact_json_encoder
from core.outcomes import LedgerEntry, WriteItem
from core.pair import Pair
from core.sink import Sink
from core.source import Record, Seen, Source
from core.state import PairView, StateStore

_canonical = exact_json_encoder(sort_keys=True)


class Pending(Protocol):
    """A record about to be classified: its key, what it was read as, and its payload (the
    runner's own candidates, judged as they are)."""

    @property
    def key(self) -> str: ...
    @property
    def record(self) -> Record: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def digest(self) -> str: ...


@dataclass
class Verdict:
    """What the pair makes of one record: the payload to send (owned fields taken from the other
    side), whether it is an echo, and the view to keep (``changed``: not the one kept now)."""

    payload: dict[str, Any]
    view: PairView
    changed: bool
    echo: bool = False
    #: sent though its payload is unchanged: the other side has since been read holding
    #: something else in the fields this side writes (a change there to a field this side owns)
    resend: bool = False


class Pairing:
    """Judges the records of one run of a two-way recipe (see the module's docstring)."""

    def __init__(
        self, recipe: str, pair: Pair, state: StateStore, source: Source, sink: Sink
    ) -> None:
        self.recipe = recipe
        self.pair = pair
        self.state = state
        self.source = source
        self.sink = sink

    def judge(
        self,
        pending: Sequence[Pending],
        known: Mapping[str, LedgerEntry],
        digest: Callable[[dict[str, Any]], str],
    ) -> dict[str, Verdict]:
        """A verdict for each record of ``pending`` whose source can compare it; ``known`` are
        their ledger rows and ``digest`` makes a payload's digest, to tell what would be sent."""
        seen = {p.key: s for p in pending if (s := self.source.pair_seen(p.record)) is not None}
        mine = {v.key: v for v in self.state.pair_views(self.recipe, seen)}
        targets = {p.key: self.sink.pair_target(p.payload) for p in pending if p.key in seen}
        wanted = {v.link for v in mine.values() if v.link} | {t for t in targets.values() if t}
        theirs = self.state.pair_views(self.pair.partner, wanted, seen)
        by_key = {v.key: v for v in theirs}
        by_link = {v.link: v for v in theirs if v.link}
        verdicts: dict[str, Verdict] = {}
        contested: list[WriteItem] = []
        for item in pending:
            if item.key not in seen:
                continue
            held = mine.get(item.key)
            other = _first(
                by_key.get(held.link or "") if held else None,
                by_key.get(targets[item.key] or ""),
                by_link.get(item.key),
            )
            link = other.key if other else (held.link if held else None) or targets[item.key]
            verdict = self._verdict(item, seen[item.key], held, other, link)
            verdicts[item.key] = verdict
            previous = known.get(item.key)
            changed = previous is None or previous.payload_hash != digest(verdict.payload)
            if not (changed or verdict.echo or other is None) and previous is not None:
                verdict.resend = other.seen_at >= previous.updated_at
            if self.pair.latest and (changed or verdict.resend) and not verdict.echo:
                contested.append(WriteItem(item.key, verdict.payload, previous))
        if contested:
            self._settle_by_time(contested, verdicts, seen, by_key)
        return verdicts

    def linked(self, view: PairView, sink_key: str | None) -> PairView | None:
        """``view`` linked to the record the sink reports it wrote (``sink_key``), when that is
        news; else None."""
        link = self.sink.pair_key(sink_key) if sink_key else None
        return None if link is None or link == view.link else _linked(view, link)

    def _verdict(
        self,
        item: Pending,
        seen: Seen,
        held: PairView | None,
        other: PairView | None,
        link: str | None,
    ) -> Verdict:
        payload = item.payload
        if other is not None and self.pair.owners:
            payload = _owned_from(payload, other.fields, self.pair)
        view = PairView(item.key, seen.fields, seen.modified, link)
        fields = self.sink.pair_fields(payload)
        echo = other is not None and bool(fields) and holds(other.fields, fields or {})
        return Verdict(payload, view, not (held and _same(held, view)), echo)

    def _settle_by_time(
        self,
        contested: list[WriteItem],
        verdicts: dict[str, Verdict],
        seen: dict[str, Seen],
        theirs: dict[str, PairView],
    ) -> None:
        """``conflict: latest``: a record the other side changed after this one is not sent."""
        current = self.sink.pair_current(contested)
        for item in contested:
            verdict = verdicts[item.key]
            there = current.get(item.key)
            if there is None:
                known = theirs.get(verdict.view.link or "")
                there = Seen(known.fields, known.modified) if known else None
            if there is None:
                continue
            fields = self.sink.pair_fields(verdict.payload)
            there_already = bool(fields) and holds(there.fields, fields or {})
            if there_already or _later(there.modified, seen[item.key].modified):
                verdict.echo, verdict.resend = True, False


def holds(held: Mapping[str, Any], written: Mapping[str, Any]) -> bool:
    """Whether a record holding ``held`` already has every field of ``written``."""
    return all(
        name in held and _canonical(held[name]) == _canonical(value)
        for name, value in written.items()
    )


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A payload's fields by dotted path (``merge_fields.FNAME``); lists stay values."""
    flat: dict[str, Any] = {}
    for name, value in payload.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _owned_from(payload: dict[str, Any], there: Mapping[str, Any], pair: Pair) -> dict[str, Any]:
    """``payload`` with each field the other side owns set to the value the other side holds."""
    changes = {
        path: there[path]
        for path in flatten(payload)
        if path in there and pair.other_side_owns(path)
    }
    if not changes:
        return payload
    updated = _copy(payload)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = updated
        for part in parents:
            node = node[part]
        node[last] = value
    return updated


def _copy(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in payload.items()}


def _first(*views: PairView | None) -> PairView | None:
    return next((v for v in views if v is not None), None)


def _same(a: PairView, b: PairView) -> bool:
    return (
        a.modified == b.modified
        and (a.link == b.link or b.link is None)
        and _canonical(a.fields) == _canonical(b.fields)
    )


def _linked(view: PairView, link: str) -> PairView:
    return PairView(view.key, view.fields, view.modified, link)


def _later(there: str | None, here: str | None) -> bool:
    """Whether the other side's modification time is after this record's (unknown: no)."""
    if not there or not here:
        return False
    try:
        return datetime.fromisoformat(there) > datetime.fromisoformat(here)
    except ValueError:
        return False
