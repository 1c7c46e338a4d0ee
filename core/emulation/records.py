"""What emulators of a one-collection service share: the records, a request log, a control plane.

A fundraising platform's list API (donations, transactions) is such a service. The emulator
subclasses :class:`RecordsState`, says how to fake one record, and adds its API routes::

    class DonationsState(RecordsState[EmulatorSettings]):
        collection, int_ids, default_seed = "donations", True, 11

        def faker(self, total: int) -> Faker: ...

    app = records_app(DonationsState(EmulatorSettings()), [Route("/donations", list_donations)])

The control plane (never faulted): ``POST /_emulator/seed`` (``count``, ``seed``, and records
named by ``collection``), ``PATCH /_emulator/{collection}/{id}``, ``GET /_emulator/state``,
``POST /_emulator/faults`` (the :class:`~core.emulation.Faults` switches, plus ``fail_next``: the
statuses the next API requests get), ``POST /_emulator/reset``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.emulation.faults import ErrorBody, FaultMiddleware, Faults, plain_error
from core.emulation.listings import Listings
from core.emulation.responses import json_response

Record = dict[str, Any]
RecordId = int | str
#: Makes one fake record from the seeded dice, its index in this seeding and its number overall.
Faker = Callable[[random.Random, int, int], Record]


class RecordsSettings(BaseModel):
    """The settings every such emulator has; a service's own settings extend them."""

    default_per_page: int = 50
    max_per_page: int = 100
    faults: Faults = Field(default_factory=Faults)
    clock: Callable[[], datetime] | None = None  # UTC


S = TypeVar("S", bound=RecordsSettings)


@dataclass
class RecordsState(Generic[S]):
    """Everything the emulated account holds; tests may use it directly."""

    collection: ClassVar[str]  # the records' plural name in control-plane bodies and paths
    int_ids: ClassVar[bool] = False  # whether record ids are numbers (else text)
    default_seed: ClassVar[int] = 0
    not_found: ClassVar[Record] = {"error": "Not found"}  # the body of a 404 for an unknown id

    settings: S
    records: dict[RecordId, Record] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses for the next API requests
    #: The list endpoint's ordered answers, kept between its pages until a record changes:
    #: change records through the state's methods (seed, update, ...), not in place.
    listings: Listings = field(default_factory=Listings, repr=False)

    def now(self) -> datetime:
        return self.settings.clock() if self.settings.clock else datetime.now(UTC)

    def faker(self, total: int) -> Faker:
        """How to fake each of the ``total`` records one seeding adds."""
        raise NotImplementedError

    def seed(
        self, count: int = 0, given: list[Record] | None = None, seed: int | None = None
    ) -> list[Record]:
        """Add ``count`` generated records, plus ``given`` (partial ones are filled in)."""
        # Offset by what is held already, so a second seeding does not repeat the first one.
        rng = random.Random((self.default_seed if seed is None else seed) + len(self.records))
        given = given or []
        total = max(count, len(given))
        fake = self.faker(total)
        made = []
        for index in range(total):
            record = fake(rng, index, len(self.records) + 1)
            record.update(given[index] if index < len(given) else {})
            self.records[self.record_id(record["id"])] = record
            made.append(record)
        self.listings.changed()
        return made

    def record_id(self, value: Any) -> RecordId:
        return int(value) if self.int_ids else str(value)

    def update(self, record_id: RecordId, changes: Record) -> Record:
        """Change a record in place (a refund, an edit)."""
        record = self.records[record_id]
        record.update(changes)
        self.listings.changed()
        return record

    def log(self, request: Request, status: int) -> None:
        """Note an API request and the status it got, for tests to count."""
        self.requests.append(
            {"path": request.url.path, "query": dict(request.query_params), "status": status}
        )

    def reset(self) -> None:
        self.listings.changed()
        self.records.clear()
        self.requests.clear()
        self.fail_next.clear()
        self.settings.faults.clear()


def _state(request: Request) -> RecordsState[Any]:
    state: RecordsState[Any] = request.app.state.emulator
    return state


async def _seed(request: Request) -> Response:
    body = await request.json()
    state = _state(request)
    seed = int(body["seed"]) if "seed" in body else None
    made = state.seed(int(body.get("count", 0)), body.get(state.collection), seed)
    return json_response({"ids": [r["id"] for r in made]}, 201)


async def _update(request: Request) -> Response:
    state = _state(request)
    record_id = request.path_params["record_id"]
    if record_id not in state.records:
        return json_response(state.not_found, 404)
    return json_response(state.update(record_id, await request.json()))


async def _show(request: Request) -> Response:
    state = _state(request)
    return json_response(
        {state.collection: list(state.records.values()), "requests": state.requests}
    )


async def _faults(request: Request) -> Response:
    state = _state(request)
    body = dict(await request.json())
    state.fail_next.extend(int(s) for s in body.pop("fail_next", []))
    state.settings.faults.update(**body)
    return json_response(state.settings.faults.model_dump())


async def _reset(request: Request) -> Response:
    _state(request).reset()
    return json_response({"reset": True})


def records_app(
    state: RecordsState[Any], routes: list[Route], error_body: ErrorBody = plain_error
) -> Starlette:
    """The service's API ``routes`` behind the fault switches (answered as ``error_body`` says),
    plus the control plane; the state is ``app.state.emulator``."""
    record = "{record_id:int}" if state.int_ids else "{record_id}"
    control = [
        Route("/_emulator/seed", _seed, methods=["POST"]),
        Route(f"/_emulator/{state.collection}/{record}", _update, methods=["PATCH"]),
        Route("/_emulator/state", _show),
        Route("/_emulator/faults", _faults, methods=["POST"]),
        Route("/_emulator/reset", _reset, methods=["POST"]),
    ]
    app = Starlette(
        routes=[*routes, *control],
        middleware=[
            Middleware(FaultMiddleware, faults=state.settings.faults, error_body=error_body)
        ],
    )
    app.state.emulator = state
    return app
