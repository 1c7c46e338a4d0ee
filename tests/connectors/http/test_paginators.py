"""Each paginator, driven by hand-built responses: when it stops, what it asks for next."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from connectors.http.incremental import HighWaterMark, parse_moment, resume_from
from connectors.http.paginators import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageRequest,
)
from core.errors import FatalError

URL = "https://api.example.org/v1/items"


def respond(
    body: object = None, headers: dict[str, str] | None = None, url: str = URL
) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers, request=httpx.Request("GET", url))


def test_page_numbers_stop_on_a_short_page() -> None:
    paginator = PageNumberPaginator("page", 1, "per_page", 2)
    request = PageRequest("/items")
    paginator.init_request(request)
    assert request.params == {"page": 1, "per_page": 2}
    paginator.update_state(respond(), None, [{}, {}])
    assert paginator.has_next_page
    paginator.update_request(request)
    assert request.params["page"] == 2
    paginator.update_state(respond(), None, [{}])
    assert not paginator.has_next_page


def test_page_numbers_stop_at_the_last_page_the_body_names() -> None:
    paginator = PageNumberPaginator("page", 1, total_pages_path="meta.last_page")
    paginator.init_request(PageRequest("/items"))
    paginator.update_state(respond(), {"meta": {"last_page": 1}}, [{}, {}])
    assert not paginator.has_next_page


def test_offsets_advance_by_what_came_back() -> None:
    paginator = OffsetPaginator(limit=100, total_path="total")
    request = PageRequest("/items")
    paginator.init_request(request)
    paginator.update_state(respond(), {"total": 150}, [{}] * 100)
    paginator.update_request(request)
    assert request.params == {"offset": 100, "limit": 100}
    paginator.update_state(respond(), {"total": 150}, [{}] * 50)
    assert not paginator.has_next_page


def test_a_cursor_that_does_not_change_stops_the_run() -> None:
    paginator = CursorPaginator("next")
    paginator.update_state(respond(), {"next": "abc"}, [{}])
    with pytest.raises(FatalError, match="pagination does not advance"):
        paginator.update_state(respond(), {"next": "abc"}, [{}])


def test_a_relative_link_header_is_joined_and_missing_params_carried() -> None:
    paginator = LinkHeaderPaginator()
    request = PageRequest("/v1/items", {"per_page": 50, "q": "x"})
    paginator.init_request(request)
    link = '</v1/items?page=2&per_page=50>; rel="next", </v1/items?page=9>; rel="last"'
    paginator.update_state(respond([], {"Link": link}), [], [{}])
    paginator.update_request(request)
    assert request.url == "https://api.example.org/v1/items?page=2&per_page=50"
    assert request.params == {"q": "x"}


def test_a_next_url_in_the_body_ends_when_null() -> None:
    paginator = NextUrlPaginator("links.next")
    paginator.update_state(respond(), {"links": {"next": None}}, [{}])
    assert not paginator.has_next_page


def test_timestamps_in_every_common_form() -> None:
    expected = parse_moment("2025-01-05T12:00:00Z")
    for form in (
        "2025-01-05T12:00:00+00:00",
        "2025-01-05 12:00:00",
        "2025-01-05T07:00:00-05:00",
        1736078400,
        "1736078400",
        1736078400000,
    ):
        assert parse_moment(form) == expected
    assert resume_from(None, "2025-01-05", "unix") == 1736035200
    overlap = timedelta(minutes=5)
    since = resume_from("2025-01-05T12:00:00Z", "2020-01-01", "iso", overlap)
    assert since == "2025-01-05T11:55:00Z"  # the cursor wins over start, minus the overlap
    assert resume_from(None, "2025-01-05", "iso", overlap) == "2025-01-05T00:00:00Z"  # as given
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_moment("yesterday")


def test_the_high_water_mark_waits_for_the_last_record() -> None:
    records = [{"t": 3}, {"t": 9}, {"t": 5}]
    mark = HighWaterMark(lambda r: r["t"])
    seen = [(r["t"], mark.value(r)) for r in mark.track(records)]
    assert seen == [(3, None), (9, None), (5, 9)]
    ordered = HighWaterMark(lambda r: r["t"], ordered=True)
    assert [ordered.value(r) for r in ordered.track([{"t": 1}, {"t": 2}])] == [1, 2]
