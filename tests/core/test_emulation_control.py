"""Calls to an emulator on loopback (``core.emulation.control``): answers, and refusals in the
emulator's own words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.emulation import EmulatorServer
from core.emulation.control import EmulatorRefused, control, emulator_request


async def _seed(request: Request) -> Response:
    body = await request.json()
    if body.get("count", 0) < 0:
        return JSONResponse({"message": "count must not be negative"}, status_code=400)
    return JSONResponse({"seeded": body["count"]})


async def _import(request: Request) -> Response:
    return Response(status_code=204)


async def _api(request: Request) -> Response:
    return JSONResponse({"authorization": request.headers.get("authorization")})


@pytest.fixture
def url() -> Iterator[str]:
    routes = [
        Route("/_emulator/seed", _seed, methods=["POST"]),
        Route("/_emulator/import", _import, methods=["POST"]),
        Route("/api/thing", _api, methods=["POST"]),
    ]
    with EmulatorServer(Starlette(routes=routes)) as server:
        yield server.url


def test_the_control_plane_answers_json_or_nothing(url: str) -> None:
    assert control(url, "POST", "seed", {"count": 2}) == {"seeded": 2}
    assert control(url, "POST", "import") is None


def test_a_refusal_is_said_in_the_emulators_words(url: str) -> None:
    with pytest.raises(EmulatorRefused, match="^count must not be negative$"):
        control(url, "POST", "seed", {"count": -1})
    with pytest.raises(EmulatorRefused):
        control(url, "GET", "nowhere")


def test_the_api_is_called_with_the_headers_given(url: str) -> None:
    answer = emulator_request(url, "POST", "/api/thing", {}, {"Authorization": "Bearer k"})
    assert answer.json() == {"authorization": "Bearer k"}
