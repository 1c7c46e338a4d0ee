"""The Donorbox emulator keeps a list's order between its pages: every page is the one it would
be with nothing kept, whatever changed in between (a donation seeded, moved, refunded)."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.donorbox.emulator.app import DonorboxState, EmulatorSettings, create_app, stamp

with warnings.catch_warnings():
    # starlette warns that its TestClient will want httpx2; httpx is what the project has.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

START = datetime(2025, 1, 1, tzinfo=UTC)

queries = st.fixed_dictionaries(
    {"per_page": st.sampled_from(["2", "3"]), "page": st.sampled_from(["1", "2"])},
    optional={
        "order": st.sampled_from(["asc", "desc"]),
        "date_from": st.integers(0, 6).map(
            lambda d: (START + timedelta(days=d)).strftime("%Y-%m-%d")
        ),
    },
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("read"), queries),
        st.tuples(st.just("seed"), st.integers(1, 3)),
        st.tuples(st.just("move"), st.integers(0, 8), st.integers(0, 9)),
        st.tuples(st.just("refund"), st.integers(0)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(EmulatorSettings(credentials={"ops@example.org": "db-listing"}))
    basic = base64.b64encode(b"ops@example.org:db-listing").decode()
    with TestClient(app, headers={"Authorization": f"Basic {basic}"}) as client:
        yield client


def _change(state: DonorboxState, step: tuple[Any, ...]) -> None:
    ids = list(state.records)
    if step[0] == "seed":
        state.seed(count=step[1])
    elif step[0] == "move" and ids:
        moved = stamp(START + timedelta(days=step[2], hours=3))
        state.update(ids[step[1] % len(ids)], {"donation_date": moved})
    elif step[0] == "refund" and ids:
        state.refund(ids[step[1] % len(ids)])


@settings(max_examples=100)
@given(steps=steps)
def test_every_page_is_the_one_nothing_kept_would_give(
    client: TestClient, steps: list[tuple[Any, ...]]
) -> None:
    state: DonorboxState = client.app.state.emulator  # type: ignore[attr-defined]
    state.reset()
    state.seed(given=[{"donation_date": stamp(START + timedelta(days=d))} for d in range(6)])
    for step in steps:
        if step[0] != "read":
            _change(state, step)
            continue
        shown = client.get("/api/v1/donations", params=step[1]).json()
        state.listings.changed()  # what the plain rule gives: filter and sort everything now
        assert client.get("/api/v1/donations", params=step[1]).json() == shown
