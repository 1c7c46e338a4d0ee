"""core.emulation.records: the records, request log and control plane of an emulated service."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.emulation import EmulatorServer, json_response
from core.emulation.records import Faker, Record, RecordsSettings, RecordsState, records_app


@dataclass
class Things(RecordsState[RecordsSettings]):
    collection = "things"
    int_ids = True
    default_seed = 3

    def faker(self, total: int) -> Faker:
        def fake(rng: random.Random, index: int, number: int) -> Record:
            return {"id": number, "index": index, "of": total, "dice": rng.randint(0, 999)}

        return fake


async def list_things(request: Request) -> Response:
    state: Things = request.app.state.emulator
    if state.fail_next:
        status = state.fail_next.pop(0)
        state.log(request, status)
        return json_response({"error": "injected"}, status)
    state.log(request, 200)
    return json_response(list(state.records.values()))


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    app = records_app(Things(RecordsSettings()), [Route("/things", list_things)])
    with EmulatorServer(app) as server, httpx.Client(base_url=server.url) as http:
        yield http


def test_seeding_fills_in_partial_records_and_repeats_with_the_same_seed(
    client: httpx.Client,
) -> None:
    seeded = client.post("/_emulator/seed", json={"count": 2, "things": [{"name": "kept"}]})
    assert seeded.status_code == 201
    assert seeded.json() == {"ids": [1, 2]}
    again = Things(RecordsSettings())
    assert again.seed(2, [{"name": "kept"}], seed=3) == client.get("/things").json()
    held = client.get("/_emulator/state").json()
    assert [t["of"] for t in held["things"]] == [2, 2]
    assert held["things"][0]["name"] == "kept"
    assert held["requests"] == [{"path": "/things", "query": {}, "status": 200}]


def test_a_record_is_patched_by_id_and_an_unknown_one_is_a_404(client: httpx.Client) -> None:
    client.post("/_emulator/seed", json={"count": 1})
    assert client.patch("/_emulator/things/1", json={"name": "new"}).json()["name"] == "new"
    missing = client.patch("/_emulator/things/9", json={})
    assert (missing.status_code, missing.json()) == (404, {"error": "Not found"})
    assert client.patch("/_emulator/things/x", json={}).status_code == 404  # ids are ints


def test_faults_and_queued_failures_hit_the_api_but_never_the_control_plane(
    client: httpx.Client,
) -> None:
    switched = client.post(
        "/_emulator/faults", json={"fail_next": [503], "rate_limit_storm": 1}
    ).json()
    assert switched["rate_limit_storm"] == 1
    assert client.get("/_emulator/state").status_code == 200  # not part of the storm
    statuses = [client.get("/things").status_code for _ in range(3)]
    assert statuses == [429, 503, 200]


def test_reset_forgets_records_requests_and_faults(client: httpx.Client) -> None:
    client.post("/_emulator/seed", json={"count": 2})
    client.post("/_emulator/faults", json={"fail_next": [500], "error_rate": 1.0})
    client.get("/things")
    assert client.post("/_emulator/reset").json() == {"reset": True}
    assert client.get("/_emulator/state").json() == {"things": [], "requests": []}
    assert client.get("/things").json() == []
