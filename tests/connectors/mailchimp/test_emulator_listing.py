"""The Mailchimp emulator keeps a member list's order between its offset pages: every page is the
one it would be with nothing kept, whatever changed in between (a member added, edited, archived,
or changed in place by a test)."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mailchimp.emulator.app import EmulatorSettings, EmulatorState, create_app

with warnings.catch_warnings():
    # starlette warns that its TestClient will want httpx2; httpx is what the project has.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LIST = "emulator-list"
START = datetime(2025, 1, 1, tzinfo=UTC)

# Few distinct listings, so that a read, a change and a read of the same listing come up often.
queries = st.fixed_dictionaries(
    {"count": st.sampled_from(["2", "3"]), "offset": st.sampled_from(["0", "2"])},
    optional={
        "status": st.just("subscribed"),
        "sort_field": st.just("last_changed"),
        "sort_dir": st.just("DESC"),
        "since_last_changed": st.just((START + timedelta(days=2)).isoformat()),
    },
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("read"), queries),
        st.tuples(st.just("read"), queries),
        st.tuples(st.just("add"), st.integers(0, 9)),
        st.tuples(st.just("unsubscribe"), st.integers(0, 8)),
        st.tuples(st.just("archive"), st.integers(0, 8)),
        st.tuples(st.just("touch"), st.integers(0, 8), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=16,
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(EmulatorSettings())
    basic = base64.b64encode(b"u:emulator-key-us1").decode()
    with TestClient(app, headers={"Authorization": f"Basic {basic}"}) as client:
        yield client


def _change(state: EmulatorState, step: tuple[Any, ...]) -> None:
    members = list(state.members[LIST].values())
    if step[0] == "add":
        moment = START + timedelta(days=step[1])
        state.create(LIST, f"donor{len(members)}@donors.org", "subscribed", {}, None, moment)
        return
    if not members:
        return
    member = members[step[1] % len(members)]
    if step[0] == "unsubscribe":
        state.update(LIST, member.email, {"status": "unsubscribed"})
    elif step[0] == "archive":
        state.archive(LIST, member.email)
    else:  # a test setting a member's time directly
        member.last_changed = START + timedelta(days=step[2])


@settings(max_examples=100)
@given(steps=steps)
def test_every_page_is_the_one_nothing_kept_would_give(
    client: TestClient, steps: list[tuple[Any, ...]]
) -> None:
    state: EmulatorState = client.app.state.emulator  # type: ignore[attr-defined]
    state.reset()
    for day in range(5):
        _change(state, ("add", day))
    for step in steps:
        if step[0] != "read":
            _change(state, step)
            continue
        shown = client.get(f"/3.0/lists/{LIST}/members", params=step[1]).json()
        state.listings.changed()  # what the plain rule gives: filter and sort everything now
        assert client.get(f"/3.0/lists/{LIST}/members", params=step[1]).json() == shown
