"""Moving recipes' state to another state database (``connector state copy``): from a SQLite
file to Postgres when one machine becomes many, and back, or between Postgres databases.

Everything a recipe owns goes: its cursor, its ledger (what was sent, with digests and the
service's ids), dead letters, two-way views, webhook inbox, run reports and what the worker keeps
under its name, so a run against the copy sends nothing the original had sent. Each recipe is
written in one transaction on the target, read from one snapshot of the source, while both
stores hold the recipe's lock (no run of it starts at either end meanwhile).

It refuses, copying nothing, when the copy could not be exact or would lose what a run knew: a
run of the recipe is going, the source holds in-flight marks (sent, answer unknown) or events a
server holds, the target holds state of the recipe already (unless ``replace``), or a database's
schema is newer than this connector knows. The cache of service reference data belongs to no
recipe and is fetched again; leases, rate budgets and tokens stay where they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import RecipeError, RunInProgressError
from core.state import open_state
from core.state.copy_ends import End, end_at


@dataclass(frozen=True)
class Table:
    """A table a recipe owns rows of: ``owner`` names the recipe (by its number in ``recipes``
    when ``numbered``); ``columns`` are every other column copied, ``texts`` those Postgres
    keeps escaped, ``digest`` the one SQLite keeps packed."""

    name: str
    kind: str  # as the copy's summary names its rows
    columns: tuple[str, ...]
    owner: str = "recipe"
    numbered: bool = False
    texts: tuple[str, ...] = ()
    digest: str | None = None
    order: str = "source_key"


TABLES: tuple[Table, ...] = (
    Table("recipe_state", "cursor", ("cursor", "sink_checkpoint", "updated_at"), order="recipe"),
    Table(
        "ledger",
        "ledger",
        ("source_key", "payload_hash", "sink_key", "outcome", "updated_at"),
        numbered=True,
        texts=("source_key", "sink_key"),
        digest="payload_hash",
    ),
    Table(
        "dead_letters",
        "dead letters",
        ("source_key", "outcome", "reason", "field", "record", "attempts", "updated_at")
        + ("payload_hash",),
        texts=("source_key", "reason", "field"),
    ),
    Table(
        "in_flight",
        "in flight",
        ("source_key", "payload_hash", "sink_ref", "payload", "record", "since"),
        texts=("source_key", "sink_ref"),
    ),
    Table(
        "pair_views",
        "two-way views",
        ("source_key", "fields", "modified", "link", "seen_at"),
        numbered=True,
        texts=("source_key", "link"),
    ),
    Table(
        "inbox",
        "inbox events",
        ("event_id", "type", "source_key", "record", "occurred_at", "received_at", "status")
        + ("attempts", "available_at", "leased_until", "last_error", "claimed_by"),
        order="seq",  # arrival order; the target numbers them anew after its own
    ),
    Table("runs", "run reports", ("started_at", "report"), order="started_at, {row}"),
    # What the worker keeps under the recipe's name: when it last ran, failures in a row.
    Table(
        "cache", "worker schedule", ("namespace", "value", "stored_at"), "key", order="namespace"
    ),
)


@dataclass(frozen=True)
class Named:
    """A recipe to copy: its name, and its file as the user typed it (for the commands the
    messages name)."""

    name: str
    path: str


@dataclass(frozen=True)
class Copied:
    """What was copied of one recipe: rows per kind (:attr:`Table.kind`), in :data:`TABLES`'
    order."""

    recipe: str
    rows: dict[str, int]


def copy_state(
    recipes: Sequence[Named],
    source: str | Path,
    target: str | Path,
    *,
    replace: bool = False,
    wait: bool = False,
) -> list[Copied]:
    """Copy the state of ``recipes`` from ``source`` to ``target`` (each a path or a state
    URL), each recipe in one transaction on the target; refused before any is copied when one
    cannot be (see the module's docstring), with a :class:`RecipeError` saying why."""
    ends = _Ends(end_at(source), end_at(target))
    if _same(source, target):
        msg = f"--from and --to are the same state database ({ends.source.where}): nothing to copy"
        raise RecipeError(msg)
    for end, role in ends.roles():
        _check_version(end, role)
    with ExitStack() as stack:
        stores = [stack.enter_context(_opened(location)) for location in (source, target)]
        for named in recipes:
            for store, (end, role) in zip(stores, ends.roles(), strict=True):
                _lock(stack, store, named, end, role, wait=wait)
        for end, _ in ends.roles():
            end.open()
            stack.callback(end.close)
        for named in recipes:
            _refusal(ends, named, replace=replace)
        return [_copy(ends, named, replace=replace) for named in recipes]


@dataclass(frozen=True)
class _Ends:
    source: End
    target: End

    def roles(self) -> tuple[tuple[End, str], tuple[End, str]]:
        return (self.source, "--from"), (self.target, "--to")

    def show(self, named: Named, end: End) -> str:
        """The command that shows what ``end`` holds of the recipe (a URL is not repeated)."""
        role = "--from" if end is self.source else "--to"
        where = f"<the {role} URL>" if end.postgres else end.where
        return f"connector state show {named.path} --state {where}"


def _same(source: str | Path, target: str | Path) -> bool:
    ends = (str(source).removeprefix("sqlite:///"), str(target).removeprefix("sqlite:///"))
    if "://" in ends[0] or "://" in ends[1]:
        return ends[0] == ends[1]
    return Path(ends[0]).resolve() == Path(ends[1]).resolve()


def _check_version(end: End, role: str) -> None:
    """Opening a store migrates an older schema to this connector's; a newer one it refuses."""
    found = end.version()
    if found > end.known:
        msg = (
            f"the {role} state database {end.where} is of schema version {found}, newer than"
            f" this connector knows ({end.known}): upgrade connector here, to the release that"
            " wrote it, then copy again; nothing was copied"
        )
        raise RecipeError(msg)


@contextmanager
def _opened(location: str | Path) -> Iterator[Any]:
    store = open_state(location)  # migrates an older schema, creates a new database's tables
    try:
        yield store
    finally:
        store.close()


def _lock(stack: ExitStack, store: Any, named: Named, end: End, role: str, *, wait: bool) -> None:
    try:
        stack.enter_context(store.lock(named.name, wait=wait))
    except RunInProgressError as error:
        msg = (
            f"cannot copy {named.name}: a run of it is going on the {role} state {end.where}"
            f" ({error}); nothing was copied"
        )
        raise RecipeError(msg) from None


def _refusal(ends: _Ends, named: Named, *, replace: bool) -> None:
    """Refuse to copy ``named`` when the copy would lose what a run knew, or overwrite state."""
    source, name = ends.source, named.name
    _refuse_unsettled(ends, named, source)
    if not _held(source, name):
        msg = (
            f"{source.where} holds no state of {name}: nothing to copy (is --from right?"
            f" {ends.show(named, source)} shows what it holds)"
        )
        raise RecipeError(msg)
    _refuse_held(ends, named, replace=replace)
    _refuse_unsettled(ends, named, ends.target)  # what --replace would forget


def _refuse_unsettled(ends: _Ends, named: Named, end: End) -> None:
    """Records sent whose answer no one knows yet, or events a server is processing: a copy
    would lose them (from the source) or forget them (replacing the target's)."""
    name = named.name
    sent = _count(end, _table("in_flight"), name)
    if sent:
        msg = (
            f"cannot copy {name}: {end.where} holds {sent} record(s) in flight (sent by a run"
            " that stopped before it knew what the service did with them); run the recipe once"
            f" more against it, which settles them, then copy. {ends.show(named, end)}"
            " shows them; nothing was copied"
        )
        raise RecipeError(msg)
    claimed = end.rows(
        "SELECT count(*) FROM inbox WHERE recipe = ? AND leased_until > ?", (name, end.now())
    )[0][0]
    if claimed:
        msg = (
            f"cannot copy {name}: a server holds {claimed} of its webhook event(s) in"
            f" {end.where} (connector serve or worker is processing them); stop the servers"
            " and workers using it, then copy; nothing was copied"
        )
        raise RecipeError(msg)


def _refuse_held(ends: _Ends, named: Named, *, replace: bool) -> None:
    held = _held(ends.target, named.name)
    if held and not replace:
        listed = ", ".join(f"{kind} {count}" for kind, count in held.items())
        msg = (
            f"{ends.target.where} already holds state of {named.name} ({listed});"
            f" {ends.show(named, ends.target)} shows it. --replace replaces it with what"
            f" {ends.source.where} holds; nothing was copied"
        )
        raise RecipeError(msg)


def _copy(ends: _Ends, named: Named, *, replace: bool) -> Copied:
    source, target, name = ends.source, ends.target, named.name
    with source.transaction(write=False):  # one snapshot of every table
        found = {table: _read(source, table, name) for table in TABLES}
    with target.transaction(write=True):
        _refuse_held(ends, named, replace=replace)  # a run may have begun since the look
        if replace:
            _delete(target, name)
        for table, rows in found.items():
            _write(target, table, name, rows)
    return Copied(name, {table.kind: len(rows) for table, rows in found.items()})


def _table(name: str) -> Table:
    return next(table for table in TABLES if table.name == name)


def _held(end: End, recipe: str) -> dict[str, int]:
    """How many rows of each kind ``end`` holds of ``recipe``; only the kinds it has."""
    counts = {table.kind: _count(end, table, recipe) for table in TABLES}
    return {kind: count for kind, count in counts.items() if count}


def _count(end: End, table: Table, recipe: str) -> int:
    owner = _owner(end, table, recipe)
    if owner is None:
        return 0
    found = end.rows(f"SELECT count(*) FROM {table.name} WHERE {table.owner} = ?", (owner,))
    return int(found[0][0])


def _owner(end: End, table: Table, recipe: str, *, create: bool = False) -> int | str | None:
    """What ``table``'s owner column holds for ``recipe``: its name, or its number (None:
    ``end`` has none)."""
    if not table.numbered:
        return recipe
    if create:
        end.run("INSERT INTO recipes (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (recipe,))
    found = end.rows("SELECT id FROM recipes WHERE name = ?", (recipe,))
    return int(found[0][0]) if found else None


def _read(end: End, table: Table, recipe: str) -> list[tuple[Any, ...]]:
    owner = _owner(end, table, recipe)
    if owner is None:
        return []
    order = table.order.format(row="ctid" if end.postgres else "rowid")
    rows = end.rows(
        f"SELECT {', '.join(table.columns)} FROM {table.name} WHERE {table.owner} = ?"
        f" ORDER BY {order}",
        (owner,),
    )
    return [_plain(end, table, row) for row in rows]


def _write(end: End, table: Table, recipe: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    owner = _owner(end, table, recipe, create=True)
    columns = (table.owner, *table.columns)
    end.run_many(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [(owner, *_stored(end, table, row)) for row in rows],
    )


def _delete(end: End, recipe: str) -> None:
    for table in TABLES:
        owner = _owner(end, table, recipe)
        if owner is not None:
            end.run(f"DELETE FROM {table.name} WHERE {table.owner} = ?", (owner,))


def _plain(end: End, table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` as every end takes it: text as it was given, a digest as its hex."""
    values = list(row)
    for index, column in enumerate(table.columns):
        if column in table.texts:
            values[index] = end.plain_text(values[index])
        elif column == table.digest:
            values[index] = end.plain_digest(values[index])
    return tuple(values)


def _stored(end: End, table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A plain ``row`` as ``end`` keeps it."""
    values = list(row)
    for index, column in enumerate(table.columns):
        if column in table.texts:
            values[index] = end.stored_text(values[index])
        elif column == table.digest:
            values[index] = end.stored_digest(values[index])
    return tuple(values)
