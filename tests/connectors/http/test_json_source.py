"""http.json through the CLI: every pagination style, every auth type, incremental reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from starlette.requests import Request

from core.emulation import EmulatorServer
from tests.conftest import read_jsonl
from tests.connectors.http.apps import ItemsApi, create_app, item

SECRET = "sk-http-json-9d8c7b6a5f4e3d21"

RECIPE = """
version: 1
name: items
source:
  use: http.json
  with:
    service_name: Items API
    base_url: "${{ITEMS_URL}}"
    path: {path}
{extra}
sink:
  use: file.jsonl
  with: {{path: out.jsonl}}
"""


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ItemsApi]:
    state = ItemsApi()
    with EmulatorServer(create_app(state)) as server:
        monkeypatch.setenv("ITEMS_URL", server.url)
        monkeypatch.setenv("ITEMS_SECRET", SECRET)
        yield state


@pytest.fixture
def run(write_recipe: Callable[..., Path], invoke: Callable[..., Result]):
    """Write a recipe for ``path`` with extra ``with:`` lines, run it, return the CLI result."""

    def go(path: str, extra: str, *args: str) -> Result:
        indented = "\n".join(f"    {line}" for line in extra.strip().splitlines())
        recipe = write_recipe(RECIPE.format(path=path, extra=indented))
        return invoke("run", recipe, "--json", *args)

    return go


def report(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


PAGINATIONS = {
    "page_number": (
        "/page",
        "pagination: {type: page_number, size_param: size, size: 3}\nrecords_path: items",
        3,
    ),
    "page_number_total": (
        "/page",
        "pagination: {type: page_number, size_param: size, size: 2,"
        " total_pages_path: total_pages}\nrecords_path: items",
        4,
    ),
    "offset": (
        "/offset",
        "pagination: {type: offset, limit: 3, total_path: count}\nrecords_path: results",
        3,
    ),
    "offset_short_page": (
        "/offset",
        "pagination: {type: offset, limit: 3}\nrecords_path: results",
        3,
    ),
    "cursor": (
        "/cursor",
        "pagination: {type: cursor, cursor_path: meta.next_cursor}\nrecords_path: data",
        3,
    ),
    "link_header": ("/link", "pagination: {type: link_header}", 3),
    "next_url": ("/next", "pagination: {type: next_url, path: links.next}\nrecords_path: data", 3),
    "none": ("/single", "records_path: data", 1),
}


@pytest.mark.parametrize("style", PAGINATIONS)
def test_every_pagination_style_reads_every_item_once(
    api: ItemsApi, run, style: str, tmp_path: Path
) -> None:
    path, extra, requests = PAGINATIONS[style]
    result = report(run(path, extra))
    assert result["outcomes"]["written"] == 7
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == list(range(1, 8))
    assert len(api.requests) == requests


def test_static_params_survive_a_next_url_that_drops_them(api: ItemsApi, run) -> None:
    report(
        run(
            "/next",
            "params: {lang: en}\npagination: {type: next_url, path: links.next}\n"
            "records_path: data",
        )
    )
    assert [r.get("after") for r in api.requests] == [None, "3", "6"]
    assert all(r["lang"] == "en" for r in api.requests)


def _bearer(request: Request) -> bool:
    return request.headers.get("Authorization") == f"Bearer {SECRET}"


def _basic(request: Request) -> bool:
    token = base64.b64encode(f"reader:{SECRET}".encode()).decode()
    return request.headers.get("Authorization") == f"Basic {token}"


def _header(request: Request) -> bool:
    return request.headers.get("X-Items-Key") == SECRET


def _query(request: Request) -> bool:
    return request.query_params.get("key") == SECRET


AUTHS = {
    "bearer": (_bearer, 'auth: {type: bearer, token: "${ITEMS_SECRET}"}'),
    "basic": (_basic, 'auth: {type: basic, username: reader, password: "${ITEMS_SECRET}"}'),
    "header": (_header, 'auth: {type: header, header: X-Items-Key, value: "${ITEMS_SECRET}"}'),
    "query": (_query, 'auth: {type: query, param: key, value: "${ITEMS_SECRET}"}'),
}


@pytest.mark.parametrize("kind", AUTHS)
def test_each_auth_type_is_accepted(api: ItemsApi, run, kind: str) -> None:
    api.check, block = AUTHS[kind]
    result = report(run("/single", f"{block}\nrecords_path: data"))
    assert result["outcomes"]["written"] == 7


@pytest.mark.parametrize("kind", AUTHS)
def test_a_refused_secret_stops_the_run_and_stays_secret(
    api: ItemsApi, run, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, block = AUTHS[kind]
    api.check = lambda request: False  # every credential is refused
    wrong = "sk-http-json-revoked-00112233"
    monkeypatch.setenv("ITEMS_SECRET", wrong)
    result = run("/single", f"{block}\nrecords_path: data")
    assert result.exit_code == 3
    assert "Items API refused the credential (401): bad credentials" in result.stderr
    assert wrong not in result.output


@pytest.mark.parametrize(
    ("block", "choices"),
    [
        (
            "pagination: {type: pages}",
            "'none', 'page_number', 'offset', 'cursor', 'link_header', 'next_url'",
        ),
        ("auth: {type: oauth, token: x}", "'bearer', 'basic', 'header', 'query', 'none'"),
    ],
)
def test_an_unknown_type_lists_the_valid_ones(api: ItemsApi, run, block: str, choices: str) -> None:
    result = run("/single", block)
    assert result.exit_code == 2
    assert choices in result.stderr.replace("\n", "")


def test_a_secret_in_plain_headers_is_refused(api: ItemsApi, run) -> None:
    result = run("/single", 'headers: {Authorization: "Bearer ${ITEMS_SECRET}"}')
    assert result.exit_code == 2
    assert "put the Authorization header in auth:" in result.stderr
    assert SECRET not in result.output


INCREMENTAL = (
    "records_path: data\n"
    "incremental: {param: updated_since, cursor_field: updated_at, start: 2025-03-02}"
)


def test_incremental_reads_only_what_changed(api: ItemsApi, run) -> None:
    first = report(run("/single", INCREMENTAL))
    assert first["outcomes"]["written"] == 6  # item 1 is older than start
    assert api.requests[0]["updated_since"] == "2025-03-02T00:00:00Z"
    second = report(run("/single", INCREMENTAL))
    assert api.requests[1]["updated_since"] == "2025-03-07T10:00:00Z"
    assert second["records_read"] == 0
    api.items[2] = {**item(3, day=9), "name": "item 3, renamed"}
    api.items.append(item(8, day=9))
    third = report(run("/single", INCREMENTAL))
    assert (third["outcomes"]["updated"], third["outcomes"]["written"]) == (1, 1)


def test_a_read_cut_short_does_not_move_the_cursor(api: ItemsApi, run) -> None:
    # The items are not sorted by updated_at, so only a complete read may advance the cursor.
    api.items.reverse()
    report(run("/single", INCREMENTAL, "--limit", "2"))
    report(run("/single", INCREMENTAL))
    assert [r["updated_since"] for r in api.requests] == ["2025-03-02T00:00:00Z"] * 2


def test_a_next_link_to_another_host_is_not_followed(api: ItemsApi, run) -> None:
    api.check, block = AUTHS["bearer"]
    result = run("/elsewhere", f"{block}\npagination: {{type: next_url}}\nrecords_path: data")
    assert result.exit_code == 3
    assert "refusing to follow a next-page link to https://evil.example/steal" in result.stderr
    assert len(api.requests) == 1


def test_a_records_path_that_is_not_a_list_says_where_the_lists_are(api: ItemsApi, run) -> None:
    result = run("/cursor", "records_path: meta")
    assert result.exit_code == 3
    assert "records_path 'meta' is a dict, not a list" in result.stderr
    result = run("/cursor", "")
    assert "the response body is a dict, not a list; lists in it: data" in result.stderr


def test_a_server_that_ignores_the_page_parameter_is_not_read_forever(api: ItemsApi, run) -> None:
    result = run("/single", "pagination: {type: page_number, size: 7}\nrecords_path: data")
    assert result.exit_code == 3
    assert "Items API: the same page came back twice" in result.stderr
    assert len(api.requests) == 2
