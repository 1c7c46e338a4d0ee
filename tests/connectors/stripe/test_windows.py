"""The window reading of the Stripe sources, over any spread of ``created`` values: every record
is yielded exactly once, oldest first, no window yields more than the cap (unless one second holds
more), and the read always ends. The list endpoint is faked in memory, newest first like Stripe."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from connectors.stripe.listing import CreatedWindowSource, ListSettings
from connectors.stripe.models import Charge
from connectors.stripe.windows import floor
from core.context import Context
from core.source import Unreadable
from core.state import open_state

DAY = 86_400
START = int(time.time()) - 400 * DAY


class _Obj:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def to_dict(self) -> dict[str, Any]:
        return dict(self.record)


class _Page:
    """The first page of ``items`` (``data``, ``has_more``); ``auto_paging_iter`` goes on to
    the last."""

    def __init__(self, items: list[dict[str, Any]], limit: int) -> None:
        self.items = items
        self.data = [_Obj(item) for item in items[:limit]]
        self.has_more = len(items) > limit

    def auto_paging_iter(self) -> Any:
        return (_Obj(item) for item in self.items)


class FakeCharges(CreatedWindowSource):
    """Charges served from memory: ``created`` filters and newest-first order as Stripe does."""

    name: ClassVar[str] = "test.fake_charges"
    Settings: ClassVar[type[BaseModel]] = ListSettings
    contract: ClassVar[type[BaseModel]] = Charge
    data: ClassVar[list[dict[str, Any]]] = []
    yielded: ClassVar[list[list[int]]] = []  # the created values of each window yielded
    calls: ClassVar[int] = 0

    def list_page(self, client: Any, params: dict[str, Any]) -> Any:
        FakeCharges.calls += 1
        assert self.calls < 5000, "the read does not end"
        created = params["created"]
        found = [
            c
            for c in self.data
            if c["created"] >= created["gte"]
            and ("lt" not in created or c["created"] < created["lt"])
        ]
        newest_first = sorted(found, key=lambda c: (c["created"], c["id"]), reverse=True)
        return _Page(newest_first, params["limit"])

    def _settled(self, window: Any) -> Any:
        self.yielded.append([r["created"] for r in window.records])
        return super()._settled(window)


def charge(index: int, created: int) -> dict[str, Any]:
    return {
        "id": f"ch_{index:05d}",
        "object": "charge",
        "created": created,
        "amount": 100,
        "amount_refunded": 0,
        "currency": "usd",
        "status": "succeeded",
        "captured": True,
        "refunded": False,
        "metadata": {},
    }


def read(
    tmp: Path, data: list[dict[str, Any]], cap: int, window_days: int, start: int | None = START
) -> list[Any]:
    FakeCharges.data, FakeCharges.yielded, FakeCharges.calls = data, [], 0
    values = {
        "api_key": "sk_test_fake",
        "base_url": "http://127.0.0.1:9",
        "start": start,
        "max_window_records": cap,
        "window_days": window_days,
    }
    context = Context("windows", tmp, open_state(tmp / "state.db"))
    source = FakeCharges(ListSettings.model_validate(values), context)
    try:
        return list(source.read(None))
    finally:
        context.close()


offsets = st.lists(
    st.one_of(
        st.integers(0, 400 * DAY),  # anywhere, up to now
        st.integers(200 * DAY, 200 * DAY + 600),  # a burst
        st.just(300 * DAY),  # many in one second
    ),
    max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(
    offsets=offsets,
    cap=st.integers(1, 12),
    window_days=st.integers(1, 40),
    start=st.sampled_from([START, START - 3000 * DAY, None]),
)
def test_every_record_once_oldest_first_whatever_the_spread(
    tmp_path_factory: Any, offsets: list[int], cap: int, window_days: int, start: int | None
) -> None:
    data = [charge(i, START + offset) for i, offset in enumerate(offsets)]
    records = read(tmp_path_factory.mktemp("w"), data, cap, window_days, start)
    assert not [r for r in records if isinstance(r, Unreadable)]
    assert sorted(r["id"] for r in records) == sorted(c["id"] for c in data)
    created = [r["created"] for r in records]
    assert created == sorted(created)
    for window in FakeCharges.yielded:
        assert len(window) <= cap or len(set(window)) == 1  # one second cannot be split


@settings(max_examples=200, deadline=None)
@given(
    created=st.lists(st.integers(0, 6000 * DAY), min_size=1, max_size=30),
    width=st.integers(1, 60 * DAY),
)
def test_the_floor_is_within_a_window_below_the_oldest_record_in_log2_probes(
    created: list[int], width: int
) -> None:
    asked: list[int] = []

    def newest_before(moment: int) -> int | None:
        asked.append(moment)
        return max((c for c in created if c < moment), default=None)

    low, high = 0, max(created)
    found = floor(low, high, width, newest_before)
    assert min(created) - width < found <= min(created)
    assert len(asked) <= max(0, math.ceil(math.log2((high - low + 1) / width)))
