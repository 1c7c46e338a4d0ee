"""A small JSON API that pages the same seven items in every style ``http.json`` supports."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Check = Callable[[Request], bool]


def item(number: int, day: int | None = None) -> dict[str, Any]:
    return {
        "id": number,
        "name": f"item {number}",
        "updated_at": f"2025-03-{day or number:02d}T10:00:00Z",
    }


@dataclass
class ItemsApi:
    """The items, the requests seen, and the credential check (``None``: public)."""

    items: list[dict[str, Any]] = field(default_factory=lambda: [item(n) for n in range(1, 8)])
    requests: list[dict[str, str]] = field(default_factory=list)
    check: Check | None = None

    def visible(self, request: Request) -> list[dict[str, Any]]:
        since = request.query_params.get("updated_since")
        return [i for i in self.items if not since or i["updated_at"] > since]


def _api(request: Request) -> ItemsApi:
    api: ItemsApi = request.app.state.api
    api.requests.append({"path": request.url.path, **request.query_params})
    return api


def _int(request: Request, name: str, default: int) -> int:
    return int(request.query_params.get(name, default))


def page_number(request: Request, api: ItemsApi) -> Response:
    rows, page, size = api.visible(request), _int(request, "page", 1), _int(request, "size", 3)
    pages = -(-len(rows) // size)
    return JSONResponse({"items": rows[(page - 1) * size : page * size], "total_pages": pages})


def offset(request: Request, api: ItemsApi) -> Response:
    rows, start, limit = api.visible(request), _int(request, "offset", 0), _int(request, "limit", 3)
    return JSONResponse({"results": rows[start : start + limit], "count": len(rows)})


def cursor(request: Request, api: ItemsApi) -> Response:
    rows = api.visible(request)
    token = request.query_params.get("cursor")
    start = int(base64.b64decode(token)) if token else 0
    chunk = rows[start : start + 3]
    more = start + 3 < len(rows)
    following = base64.b64encode(str(start + 3).encode()).decode() if more else None
    return JSONResponse({"data": chunk, "meta": {"next_cursor": following}})


def link_header(request: Request, api: ItemsApi) -> Response:
    rows, page = api.visible(request), _int(request, "page", 1)
    headers = {}
    if page * 3 < len(rows):
        # Absolute, and carrying every parameter, as GitHub's Link headers do.
        following = request.url.include_query_params(page=page + 1)
        headers["Link"] = f'<{following}>; rel="next", <{request.url}>; rel="self"'
    return JSONResponse(rows[(page - 1) * 3 : page * 3], headers=headers)


def next_url(request: Request, api: ItemsApi) -> Response:
    rows, after = api.visible(request), _int(request, "after", 0)
    chunk = [r for r in rows if r["id"] > after][:3]
    more = bool(chunk) and chunk[-1]["id"] < rows[-1]["id"]
    # Relative, and without the other parameters, as many APIs write it.
    following = f"/next?after={chunk[-1]['id']}" if more else None
    return JSONResponse({"data": chunk, "links": {"next": following}})


def single(request: Request, api: ItemsApi) -> Response:
    return JSONResponse({"data": api.visible(request)})


def elsewhere(request: Request, api: ItemsApi) -> Response:
    return JSONResponse({"data": api.visible(request)[:3], "next": "https://evil.example/steal"})


_STYLES = {
    "/page": page_number,
    "/offset": offset,
    "/cursor": cursor,
    "/link": link_header,
    "/next": next_url,
    "/single": single,
    "/elsewhere": elsewhere,
}


def _endpoint(handler: Callable[[Request, ItemsApi], Response]) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        api = _api(request)
        if api.check is not None and not api.check(request):
            return JSONResponse({"message": "bad credentials"}, 401)
        return handler(request, api)

    return endpoint


def create_app(api: ItemsApi) -> Starlette:
    app = Starlette(routes=[Route(path, _endpoint(h)) for path, h in _STYLES.items()])
    app.state.api = api
    return app
