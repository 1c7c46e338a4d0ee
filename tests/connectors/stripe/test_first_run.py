"""What a first run (no cursor, no ``start``) costs in requests, whatever year the account
began: the pages a reader that knew where its charges begin must read, plus a few requests
(the newest page, the first window, and the probes that find the oldest charge: about
log2(years since 2011 / window) of them). It used to cross every empty month since 2011, widening
its windows up to 240 days: some thirty requests before an account's first charge."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.stripe.charges import ChargesSettings, ChargesSource
from connectors.stripe.emulator.store import seed_charges
from connectors.stripe.listing import STRIPE_EPOCH
from connectors.stripe.refunds import RefundsSettings, RefundsSource
from core.context import Context
from core.state import open_state
from tests.connectors.stripe.conftest import KEY, Emulator

DAY = 86_400
WIDTH = 30 * DAY  # window_days' default
NOW = int(time.time())


def extra(since: int = STRIPE_EPOCH, first_window: bool = False, width: int = WIDTH) -> int:
    """The requests a first run may spend besides the pages: the newest page; the first window
    when ``start`` is given; one probe per halving of the stretch the oldest charge may be in,
    down to one window; one part page more, as its windows are cut elsewhere."""
    return 1 + first_window + math.ceil(math.log2((NOW - since) / width)) + 1


EXTRA = extra()  # 10: 2011 to 2026 is 190 windows of 30 days


def read(
    emulator: Emulator, tmp: Path, cursor: int | None = None, **settings: Any
) -> tuple[list[str], int]:
    """The charge ids a read yields, and the list requests it sent."""
    values = {"api_key": KEY, "base_url": emulator.url, **settings}
    context = Context("first-run", tmp, open_state(tmp / "state.db"))
    source = ChargesSource(ChargesSettings.model_validate(values), context)
    before = len(emulator.lists())
    try:
        ids = [r["id"] for r in source.read(cursor)]
    finally:
        context.close()
    return ids, len(emulator.lists()) - before


def knowing_the_start(emulator: Emulator, tmp: Path, oldest: int, **settings: Any) -> int:
    """The list requests of a read from the oldest charge on, as a run told where the account
    began reads: the windows it must read, no search."""
    _, sent = read(emulator, tmp, cursor=oldest, overlap_seconds=0, **settings)
    return sent


def test_a_month_of_charges_costs_its_pages_and_a_few_more(emulator, tmp_path) -> None:
    """250 charges over the last month: 3 pages, 4 if a window boundary cuts the month. The run
    used to send 31 requests, 27 of them over the empty years since 2011."""
    made = seed_charges(emulator.store, 250, start=NOW - 30 * DAY, spacing=10_000)
    ids, sent = read(emulator, tmp_path)
    assert ids == [c["id"] for c in made]
    assert sent <= math.ceil(250 / 100) + 1 + EXTRA


def test_an_account_of_2011_costs_what_a_run_told_its_start_costs(emulator, tmp_path) -> None:
    """Charges every month since February 2011 (in windows of 120 days, to keep the test
    short): a first run reads them as a run told the start would, plus the newest page and the
    search."""
    start = STRIPE_EPOCH + 40 * DAY
    made = seed_charges(emulator.store, (NOW - start) // (30 * DAY), start=start, spacing=30 * DAY)
    ids, sent = read(emulator, tmp_path / "first", window_days=120)
    assert ids == [c["id"] for c in made]
    told = knowing_the_start(emulator, tmp_path / "told", start, window_days=120)
    assert sent <= told + extra(width=120 * DAY)
    assert told > 45  # a window every 120 days: what the account holds, nothing to save


@pytest.mark.parametrize("count", [40, 100, 101, 180])
def test_a_first_run_over_a_young_account_spends_a_few_requests_more_than_its_pages(
    emulator, tmp_path, count
) -> None:
    """An account that began last month: up to a page of charges in one request, more in their
    pages plus the search (which would otherwise cross 15 years of empty windows)."""
    made = seed_charges(emulator.store, count, start=NOW - 25 * DAY, spacing=25 * DAY // count)
    ids, sent = read(emulator, tmp_path / "first")
    assert ids == [c["id"] for c in made]
    if count <= 100:
        assert sent == 1  # the newest page is all there is
    else:
        told = knowing_the_start(emulator, tmp_path / "told", made[0]["created"])
        assert sent <= told + EXTRA


def test_an_empty_account_costs_one_request(emulator, tmp_path) -> None:
    ids, sent = read(emulator, tmp_path)
    assert (ids, sent) == ([], 1)


def test_a_big_account_costs_its_windows_and_a_few_requests(emulator, tmp_path) -> None:
    """600 charges over the last two months, at most 240 a window: the windows narrow to what
    the cap allows, as they would for a run told the start; only the search is added."""
    made = seed_charges(
        emulator.store, 600, start=NOW - 60 * DAY, spacing=60 * DAY // 600, customers=False
    )
    ids, sent = read(emulator, tmp_path / "first", max_window_records=240)
    assert ids == [c["id"] for c in made]
    told = knowing_the_start(
        emulator, tmp_path / "told", made[0]["created"], max_window_records=240
    )
    assert sent <= told + EXTRA


def test_a_start_before_the_first_charge_is_searched_from(emulator, tmp_path) -> None:
    """``start: 2020-01-01`` on an account that began last month: the first window (empty) and
    the search, not windows across six empty years."""
    start = 1_577_836_800  # 2020-01-01
    made = seed_charges(emulator.store, 250, start=NOW - 30 * DAY, spacing=10_000)
    ids, sent = read(emulator, tmp_path, start=start)
    assert ids == [c["id"] for c in made]
    assert sent <= math.ceil(250 / 100) + 1 + extra(start, first_window=True)


def test_a_start_where_the_charges_begin_costs_the_newest_page_more(emulator, tmp_path) -> None:
    made = seed_charges(emulator.store, 250, start=NOW - 100 * DAY, spacing=30_000)
    ids, sent = read(emulator, tmp_path / "first", start=made[0]["created"])
    assert ids == [c["id"] for c in made]
    assert sent == knowing_the_start(emulator, tmp_path / "told", made[0]["created"]) + 1


def test_refunds_are_found_the_same_way(emulator, tmp_path) -> None:
    """Every source read by ``created`` windows searches for its oldest record: 150 refunds of
    last month, as many charges since 2011."""
    charges = seed_charges(emulator.store, 150, start=STRIPE_EPOCH + DAY, spacing=10 * DAY)
    for number, charge in enumerate(charges):
        created = NOW - 30 * DAY + number * 10_000
        emulator.store.create_refund({"charge": charge["id"], "created": created})
    settings = RefundsSettings.model_validate({"api_key": KEY, "base_url": emulator.url})
    context = Context("first-run", tmp_path, open_state(tmp_path / "state.db"))
    try:
        refunds = list(RefundsSource(settings, context).read(None))
    finally:
        context.close()
    assert [r["charge_id"] for r in refunds] == [c["id"] for c in charges]
    assert len(emulator.lists("/v1/refunds")) <= math.ceil(150 / 100) + 1 + EXTRA


def test_a_pending_charge_found_after_the_search_holds_the_cursor_back(emulator, tmp_path) -> None:
    """The search changes where the windows begin, not what they promise: a pending charge
    among 150 of last month holds the cursor at its own creation."""
    made = seed_charges(emulator.store, 150, start=NOW - 30 * DAY, spacing=10_000)
    emulator.store.charges[made[40]["id"]]["status"] = "pending"
    context = Context("first-run", tmp_path, open_state(tmp_path / "state.db"))
    source = ChargesSource(
        ChargesSettings.model_validate({"api_key": KEY, "base_url": emulator.url}), context
    )
    try:
        records = list(source.read(None))
    finally:
        context.close()
    assert len(records) == 149
    assert {source.cursor_value(r) for r in records[40:]} == {made[40]["created"]}
