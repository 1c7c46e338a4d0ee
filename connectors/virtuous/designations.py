"""Designations checked against Virtuous's projects before a gift is sent.

Virtuous accepts a gift transaction whatever its designations say; one that names no project
waits for the nightly import and lands in "needs update" there, days later. So the gift sinks
read the organization's projects (``POST /api/Project/Query``, paged like every other query) once
per run, keep them in the state store's cache for ``projects_cache_minutes``, and dead-letter a
gift whose designation matches none, naming the closest projects.

How a designation is matched follows the emulator's model of the import, all of it our
inference (the API reference says only "designations (project id/name/code)"): the ``id`` when
it names a project, else the ``code`` against project codes, else the ``name`` against project
names; codes and names ignore case and surrounding spaces (SQL Server's default collation, and
the emulator). An inactive project still matches (nothing says the import refuses one); each is
logged once per run, and ``inactive_projects: refuse`` dead-letters such gifts instead. A miss
against cached projects reads them afresh once per run, so a project created since is found.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.virtuous.service import VirtuousSettings
from core.errors import AuthError, FatalError, InvalidRecord, RetriableError, SkippableError
from core.http.redact import redact_url
from core.http.service import fingerprint

if TYPE_CHECKING:
    from connectors.virtuous.gift_transactions import GiftTransactionSettings
    from core.context import Context

log = logging.getLogger(__name__)

CACHE_NAMESPACE = "virtuous.projects"
_KEYS = ("id", "code", "name")  # the precedence the import is taken to match by
_OFF_SWITCH = "set check_designations: false to send gifts without checking them"


@dataclass(frozen=True)
class Project:
    """What a designation can be matched against."""

    id: int
    code: str
    name: str
    active: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Project:
        return cls(
            id=int(row["id"]),
            code=str(row.get("projectCode") or ""),
            name=str(row.get("name") or ""),
            active=row.get("isActive") is not False,
        )

    def to_cache(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name, "active": self.active}

    @classmethod
    def from_cache(cls, item: Mapping[str, Any]) -> Project:
        return cls(int(item["id"]), str(item["code"]), str(item["name"]), bool(item["active"]))


def _fold(text: str) -> str:
    return text.strip().casefold()


class ProjectCatalog:
    """An organization's projects, indexed by id, code and name."""

    def __init__(self, projects: Iterable[Project]) -> None:
        self.projects = list(projects)
        self._by_id = {p.id: p for p in self.projects}
        self._by_text: dict[str, dict[str, Project]] = {"code": {}, "name": {}}
        for project in self.projects:
            for kind in ("code", "name"):
                value = getattr(project, kind)
                if value:
                    self._by_text[kind].setdefault(_fold(value), project)

    def match(self, designation: Designation) -> Project | None:
        """The project the import would place ``designation`` on, or None."""
        if designation.id is not None and designation.id in self._by_id:
            return self._by_id[designation.id]
        for kind in ("code", "name"):
            value = getattr(designation, kind)
            if value and _fold(value) in self._by_text[kind]:
                return self._by_text[kind][_fold(value)]
        return None

    def closest(self, kind: str, value: str, count: int = 3) -> list[str]:
        """The project codes (or names) spelled most like ``value``."""
        known = self._by_text[kind]
        import difflib  # here: only an unknown project asks

        close = difflib.get_close_matches(_fold(value), list(known), n=count, cutoff=0.6)
        return [getattr(known[folded], kind) for folded in close]

    def other_kind(self, kind: str, value: str) -> Project | None:
        """The project whose *other* field (name for a code, code for a name) is ``value``."""
        return self._by_text["name" if kind == "code" else "code"].get(_fold(value))


@dataclass(frozen=True)
class Designation:
    """One designation of a mapped gift, as the check reads it (before the sink's model)."""

    index: int
    id: int | None
    code: str | None
    name: str | None

    @classmethod
    def read(cls, index: int, item: Mapping[str, Any]) -> Designation:
        return cls(
            index, _as_id(item.get("id")), _as_text(item.get("code")), _as_text(item.get("name"))
        )

    @property
    def field(self) -> str:
        """The path of the first key it names a project by, as validation errors name fields."""
        key = next((k for k in _KEYS if getattr(self, k) not in (None, "")), "code")
        return f"designations.{self.index}.{key}"


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _as_text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def no_project_message(designation: Designation, catalog: ProjectCatalog) -> str:
    """``no project 'SCHOLAR'; did you mean 'SCHOLARSHIP'?``"""
    asked = [f"with id {designation.id}"] if designation.id is not None else []
    asked += [repr(v) for v in (designation.code, designation.name) if v]
    message = f"no project {' or '.join(asked)}"
    suggestions: list[str] = []
    for kind in ("code", "name"):
        value = getattr(designation, kind)
        if not value:
            continue
        twin = catalog.other_kind(kind, value)
        if twin is not None:
            other = "name" if kind == "code" else "code"
            return f"{message}; {value!r} is the {other} of project {twin.code or twin.id!r}"
        suggestions += [s for s in catalog.closest(kind, value) if s not in suggestions]
    if suggestions:
        quoted = [repr(s) for s in suggestions[:3]]
        choices = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        return f"{message}; did you mean {choices}?"
    return f"{message} among Virtuous's {len(catalog.projects)} projects"


def read_projects(settings: VirtuousSettings, context: Context) -> list[Project]:
    """Every project of the organization, through the central client.

    A failure stops the run: without the projects, no gift can be judged.
    """
    # The query machinery comes with the first read: ``connector validate`` never needs it.
    from connectors.virtuous.queries import ProjectQuery, QuerySettings

    credentials = {name: getattr(settings, name) for name in VirtuousSettings.model_fields}
    query = ProjectQuery(QuerySettings(**credentials, page_size=1000), context)
    try:
        return [Project.from_row(row) for row in query.read(None)]
    except (FatalError, RetriableError, SkippableError) as error:  # a 403 is a FatalError too
        if isinstance(error, AuthError) and error.status != 403:
            raise  # a refused key fails every request alike: no check to turn off
        msg = f"cannot read Virtuous's projects to check designations: {error}; {_OFF_SWITCH}"
        raise FatalError(msg) from error


def cache_key(settings: VirtuousSettings) -> str:
    """Whose projects: the API and the organization (by name, else a tag of the credential)."""
    if settings.organization:
        who = f"org:{settings.organization}"
    elif settings.api_key is not None:
        who = f"key:{fingerprint(settings.api_key.get_secret_value())}"
    else:
        who = f"user:{fingerprint(settings.username or '')}"
    # Never a password from the URL's userinfo: the key is stored in the state database.
    return f"{redact_url(settings.base_url.rstrip('/'))} {who}"


class DesignationCheck:
    """The check for one run of a gift sink: projects are read at the first designation."""

    def __init__(self, settings: GiftTransactionSettings, context: Context) -> None:
        self.settings = settings
        self.context = context
        self._catalog: ProjectCatalog | None = None
        self._fresh = False  # read from Virtuous in this run, not from the cache
        self._inactive_logged: set[int] = set()

    def check(self, key: str, payload: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidRecord` when a designation of ``payload`` names no project.

        A gift the ledger already holds is left alone: it was sent, and the runner reports it
        unchanged (or for review), whatever has become of its project since.
        """
        items = payload.get("designations")
        if not self.settings.check_designations or not isinstance(items, list) or not items:
            return
        if self.context.ledger_entry(key) is not None:
            return
        for index, item in enumerate(items):
            if isinstance(item, Mapping):  # anything else is for the sink's model to refuse
                self._check_one(Designation.read(index, item))

    def _check_one(self, designation: Designation) -> None:
        if designation.id is None and not designation.code and not designation.name:
            return  # the sink's model says what is missing
        project = self._match(designation)
        if project is None:
            message = no_project_message(designation, self.catalog())
            raise InvalidRecord(message, field=designation.field)
        if not project.active:
            self._inactive(designation, project)

    def _match(self, designation: Designation) -> Project | None:
        project = self.catalog().match(designation)
        if project is None and not self._fresh:
            project = self._reload().match(designation)  # created since the cache was filled?
        return project

    def _inactive(self, designation: Designation, project: Project) -> None:
        if self.settings.inactive_projects == "refuse":
            msg = (
                f"project {project.code or project.name!r} is inactive in Virtuous"
                " (inactive_projects: refuse)"
            )
            raise InvalidRecord(msg, field=designation.field)
        if project.id not in self._inactive_logged:
            self._inactive_logged.add(project.id)
            log.warning(
                "gifts designated to the inactive Virtuous project %r are sent; set"
                " inactive_projects: refuse to dead-letter them instead",
                project.code or project.name,
            )

    def catalog(self) -> ProjectCatalog:
        """The projects: from the cache while it is fresh, else read from Virtuous."""
        if self._catalog is None:
            cached = self.context.state.cache_get(
                CACHE_NAMESPACE, cache_key(self.settings), self.settings.projects_cache_minutes * 60
            )
            if isinstance(cached, list):
                self._catalog = ProjectCatalog(Project.from_cache(p) for p in cached)
            else:
                self._reload()
        assert self._catalog is not None
        return self._catalog

    def _reload(self) -> ProjectCatalog:
        projects = read_projects(self.settings, self.context)
        self.context.state.cache_put(
            CACHE_NAMESPACE, cache_key(self.settings), [p.to_cache() for p in projects]
        )
        self._catalog, self._fresh = ProjectCatalog(projects), True
        return self._catalog
