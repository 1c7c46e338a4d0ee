"""The Givebutter emulator keeps a list's order between its pages: every page is the one it would
be with nothing kept, whatever changed in between (a transaction seeded, edited, refunded)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.givebutter.emulator.app import EmulatorSettings, GivebutterState, create_app
from connectors.givebutter.emulator.shapes import stamp

with warnings.catch_warnings():
    # starlette warns that its TestClient will want httpx2; httpx is what the project has.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = "gb-listing-test-key"
START = datetime(2025, 1, 1, tzinfo=UTC)

queries = st.fixed_dictionaries(
    {"per_page": st.sampled_from(["2", "3"]), "page": st.sampled_from(["1", "2"])},
    optional={
        "sortBy": st.sampled_from(["amount", "created_at", "contact_name"]),
        "updatedAfter": st.integers(-30, 3).map(
            lambda d: stamp(datetime.now(UTC) + timedelta(days=d))
        ),
    },
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("read"), queries),
        st.tuples(st.just("seed"), st.integers(1, 3)),
        st.tuples(st.just("edit"), st.integers(0, 8), st.integers(0, 60), st.integers(1, 90)),
        st.tuples(st.just("refund"), st.integers(0)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(EmulatorSettings(api_keys=[KEY], requests_per_minute=10**9))
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def _change(state: GivebutterState, step: tuple[Any, ...]) -> None:
    ids = list(state.records)
    if step[0] == "seed":
        state.seed(count=step[1])
    elif step[0] == "edit" and ids:
        moved = stamp(START + timedelta(days=step[2]))
        changes = {"created_at": moved, "transacted_at": moved, "amount": float(step[3])}
        state.update(ids[step[1] % len(ids)], changes)
    elif step[0] == "refund" and ids:
        state.refund(ids[step[1] % len(ids)])


@settings(max_examples=100)
@given(steps=steps)
def test_every_page_is_the_one_nothing_kept_would_give(
    client: TestClient, steps: list[tuple[Any, ...]]
) -> None:
    state: GivebutterState = client.app.state.emulator  # type: ignore[attr-defined]
    state.reset()
    state.seed(count=6)
    for step in steps:
        if step[0] != "read":
            _change(state, step)
            continue
        shown = client.get("/v1/transactions", params=step[1]).json()
        state.listings.changed()  # what the plain rule gives: filter and sort everything now
        assert client.get("/v1/transactions", params=step[1]).json() == shown
