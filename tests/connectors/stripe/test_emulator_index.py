"""The Stripe emulator's lists, read from the order it keeps as objects are made, give exactly the
pages of the plain rule: every object of the table that matches, sorted newest first (ties in the
order they were made), cut at the cursor and the limit."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.stripe.emulator.app import EmulatorSettings, create_app
from connectors.stripe.emulator.store import StripeStore
from tests.connectors.stripe.conftest import JAN_2025, KEY

with warnings.catch_warnings():
    # starlette warns that its TestClient will want httpx2; httpx is what the project has.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

AUTH = {"Authorization": f"Bearer {KEY}"}
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(EmulatorSettings(api_keys=[KEY]))) as client:
        yield client


def _store(client: TestClient) -> StripeStore:
    store: StripeStore = client.app.state.store  # type: ignore[attr-defined]
    return store


# A charge: seconds after JAN_2025 (few, so that many share a second), its donor (or none), and
# how many refunds of 100 it gets.
charges = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from([None, 0, 1, 2]), st.integers(0, 2)),
    max_size=14,
)
created = st.one_of(
    st.none(),
    st.integers(0, 4).map(lambda s: {"created": str(JAN_2025 + s)}),
    st.dictionaries(
        st.sampled_from(["gt", "gte", "lt", "lte"]),
        st.integers(-1, 5).map(lambda s: str(JAN_2025 + s)),
        min_size=1,
    ).map(lambda bounds: {f"created[{op}]": v for op, v in bounds.items()}),
)
cursors = st.one_of(
    st.none(), st.tuples(st.sampled_from(["starting_after", "ending_before"]), st.integers(0))
)


def _seed(store: StripeStore, specs: list[tuple[int, int | None, int]]) -> None:
    store.reset()
    donors = [store.seed_customer({"name": f"Donor {n}", "created": JAN_2025}) for n in range(3)]
    for second, donor, refunds in specs:
        spec: Obj = {"amount": 1000, "created": JAN_2025 + second}
        if donor is not None:
            spec["customer"] = donors[donor]["id"]
        spec["refunds"] = [{"amount": 100, "created": JAN_2025 + second}] * refunds
        store.seed_charge(spec)


def _expected(store: StripeStore, objects: list[Obj], keep: Callable[[Obj], bool], q: Obj) -> Obj:
    """The page the plain rule gives: filter all, sort all, cut."""
    # Ids are made in order (…emu<counter>), so (created, id) is the order objects were made in.
    ranked = sorted((o for o in objects if keep(o)), key=lambda o: (o["created"], o["id"]))
    ranked.reverse()
    limit = int(q.get("limit", 10))
    if "ending_before" in q:
        anchor = store.find(q["ending_before"])
        assert anchor is not None
        newer = [o for o in ranked if (o["created"], o["id"]) > (anchor["created"], anchor["id"])]
        chunk, more = newer[-limit:], len(newer) > limit
    else:
        if "starting_after" in q:
            anchor = store.find(q["starting_after"])
            assert anchor is not None
            at = (anchor["created"], anchor["id"])
            ranked = [o for o in ranked if (o["created"], o["id"]) < at]
        chunk, more = ranked[:limit], len(ranked) > limit
    return {"ids": [o["id"] for o in chunk], "has_more": more}


def _in_created(q: Obj) -> Callable[[Obj], bool]:
    tests = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    bounds = [(tests[k[8:-1]], int(v)) for k, v in q.items() if k.startswith("created[")]
    exact = int(q["created"]) if "created" in q else None

    def keep(obj: Obj) -> bool:
        if exact is not None and obj["created"] != exact:
            return False
        return all(test(obj["created"], bound) for test, bound in bounds)

    return keep


def _query(window: Obj | None, limit: int, cursor: tuple[str, int] | None, ids: list[str]) -> Obj:
    q: Obj = {**(window or {}), "limit": str(limit)}
    if cursor is not None and ids:
        q[cursor[0]] = ids[cursor[1] % len(ids)]
    return q


def _page(client: TestClient, path: str, q: Obj) -> Obj:
    answer = client.get(path, params=q, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {"ids": [o["id"] for o in body["data"]], "has_more": body["has_more"]}


@settings(max_examples=150)
@given(
    specs=charges,
    window=created,
    limit=st.integers(1, 6),
    cursor=cursors,
    donor=st.sampled_from([None, 0, 1, 2]),
)
def test_charge_pages_are_those_of_the_plain_rule(
    client: TestClient,
    specs: list[tuple[int, int | None, int]],
    window: Obj | None,
    limit: int,
    cursor: tuple[str, int] | None,
    donor: int | None,
) -> None:
    store = _store(client)
    _seed(store, specs)
    charges_made = list(store.charges.values())
    q = _query(window, limit, cursor, [c["id"] for c in charges_made])
    in_window = _in_created(q)
    customer = list(store.customers)[donor] if donor is not None else None
    if customer is not None:
        q["customer"] = customer

    def keep(charge: Obj) -> bool:
        return in_window(charge) and (customer is None or charge["customer"] == customer)

    assert _page(client, "/v1/charges", q) == _expected(store, charges_made, keep, q)


@settings(max_examples=100)
@given(specs=charges, limit=st.integers(1, 4), pick=st.integers(0), cursor=cursors)
def test_refund_pages_of_one_charge_are_those_of_the_plain_rule(
    client: TestClient,
    specs: list[tuple[int, int | None, int]],
    limit: int,
    pick: int,
    cursor: tuple[str, int] | None,
) -> None:
    store = _store(client)
    _seed(store, specs)
    refunds = list(store.refunds.values())
    # A cursor may be any refund, of this charge or another: a position in the list's order.
    q = _query(None, limit, cursor, [r["id"] for r in refunds])
    charge = list(store.charges)[pick % len(store.charges)] if store.charges else "ch_none"
    q["charge"] = charge
    expected = _expected(store, refunds, lambda r: r["charge"] == charge, q)
    assert _page(client, "/v1/refunds", q) == expected


@settings(max_examples=100)
@given(
    specs=charges,
    window=created,
    limit=st.integers(1, 6),
    cursor=cursors,
    types=st.lists(
        st.sampled_from(
            ["charge.succeeded", "charge.refunded", "charge.*", "refund.created", "customer.*"]
        ),
        max_size=2,
        unique=True,
    ),
)
def test_event_pages_by_type_are_those_of_the_plain_rule(
    client: TestClient,
    specs: list[tuple[int, int | None, int]],
    window: Obj | None,
    limit: int,
    cursor: tuple[str, int] | None,
    types: list[str],
) -> None:
    store = _store(client)
    _seed(store, specs)
    events = list(store.events.values())
    q = _query(window, limit, cursor, [e["id"] for e in events])
    in_window = _in_created(q)
    for index, name in enumerate(types):
        q[f"types[{index}]"] = name

    def wanted(event: Obj) -> bool:
        kind = event["type"]
        named = not types or any(
            kind == t or (t.endswith(".*") and kind.startswith(t[:-1])) for t in types
        )
        return named and in_window(event)

    assert _page(client, "/v1/events", q) == _expected(store, events, wanted, q)


def test_every_charge_is_read_once_newest_first_page_after_page(client: TestClient) -> None:
    store = _store(client)
    _seed(store, [(second % 3, None, 0) for second in range(25)])
    read, q = [], {"limit": "4"}
    while True:
        page = _page(client, "/v1/charges", q)
        read += page["ids"]
        if not page["has_more"]:
            break
        q["starting_after"] = page["ids"][-1]
    made = sorted(store.charges.values(), key=lambda c: (c["created"], c["id"]), reverse=True)
    assert read == [c["id"] for c in made]


def test_a_deleted_webhook_endpoint_leaves_the_list(client: TestClient) -> None:
    store = _store(client)
    store.reset()
    made = [
        client.post(
            "/v1/webhook_endpoints",
            data={"url": f"https://hooks.example.org/{n}", "enabled_events[0]": "*"},
            headers=AUTH,
        ).json()["id"]
        for n in range(3)
    ]
    gone = client.delete(f"/v1/webhook_endpoints/{made[1]}", headers=AUTH)
    assert gone.status_code == 200
    listed = _page(client, "/v1/webhook_endpoints", {"limit": "10"})
    assert sorted(listed["ids"]) == sorted([made[0], made[2]])


class Counted(dict[str, Obj]):
    """A table that counts the objects fetched from it and the passes over all of it."""

    fetched = passes = 0

    def __getitem__(self, key: str) -> Obj:
        self.fetched += 1
        return super().__getitem__(key)

    def values(self) -> Any:
        self.passes += 1
        return super().values()

    def items(self) -> Any:
        self.passes += 1
        return super().items()

    def __iter__(self) -> Iterator[str]:
        self.passes += 1
        return super().__iter__()


def test_a_page_looks_only_at_the_objects_it_shows_and_one_more(client: TestClient) -> None:
    """Counted, not timed (bench/emulators_scale.py times it): a page of 3 of 600 charges fetches
    at most 4 of them, by window, cursor either way, donor, or event type, and never goes
    through the whole table."""
    store = _store(client)
    _seed(store, [(n % 5, n % 3, n % 2) for n in range(600)])
    ids, donor = list(store.charges), list(store.customers)[1]
    store.charges, store.events = Counted(store.charges), Counted(store.events)
    queries: list[tuple[str, Obj]] = [
        ("/v1/charges", {"limit": "3"}),
        ("/v1/charges", {"limit": "3", "created[gte]": str(JAN_2025 + 2)}),
        ("/v1/charges", {"limit": "3", "created[lt]": str(JAN_2025 + 3), "customer": donor}),
        ("/v1/charges", {"limit": "3", "starting_after": ids[300]}),
        ("/v1/charges", {"limit": "3", "ending_before": ids[300]}),
        ("/v1/events", {"limit": "3", "types[0]": "refund.created", "types[1]": "customer.*"}),
    ]
    for path, q in queries:
        assert len(_page(client, path, q)["ids"]) == 3
    assert store.charges.passes == store.events.passes == 0
    assert store.charges.fetched <= 5 * 4
    assert store.events.fetched <= 4
