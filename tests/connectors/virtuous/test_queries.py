"""virtuous.gifts and virtuous.contacts: keyset pages, incremental reads, shrinking pages."""

from __future__ import annotations

import json

import pytest

from tests.connectors.virtuous.support import report, serving

EXPORT = """\
version: 1
name: export
source:
  use: virtuous.gifts
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}", page_size: 4}
map:
  id: record.id
  amount: record.amount | to_decimal
  date: record.giftDate | parse_date
  project: record.giftDesignations[0].projectCode
sink: {use: file.csv, with: {path: gifts.csv}}
"""


def _seed(emulator, count: int, start: int = 0) -> None:
    emulator.control(
        "POST",
        "seed",
        json={
            "projects": [{"name": "General", "projectCode": "GEN"}] if start == 0 else [],
            "contacts": [{"id": 7, "firstName": "Ada", "lastName": "Lovelace"}]
            if start == 0
            else [],
            "gifts": [
                {
                    "contactId": 7,
                    "amount": f"{10 + n}.50",
                    "giftDate": "2025-01-02",
                    "giftType": "Check",
                    "designations": [{"code": "GEN", "amountDesignated": f"{10 + n}.50"}],
                }
                for n in range(start, start + count)
            ],
        },
    )


def _queries(emulator) -> list[dict[str, object]]:
    return [
        json.loads(r["body"]) | {"query": r["query"]}
        for r in emulator.requests("/api/Gift/Query/FullGift")
    ]


def test_gifts_are_read_in_keyset_pages(virtuous, write_recipe, invoke, tmp_path) -> None:
    _seed(virtuous, 10)
    result = report(invoke("run", write_recipe(EXPORT), "--json"))
    assert result["outcomes"]["written"] == 10
    rows = (tmp_path / "gifts.csv").read_text().splitlines()
    assert rows[0] == "id,amount,date,project"
    assert rows[1].endswith(",10.5,2025-01-02,GEN")
    queries = _queries(virtuous)
    assert len(queries) == 3
    assert all("skip=0" in str(q["query"]) for q in queries)
    last_ids = [q["groups"][0]["conditions"][0]["value"] for q in queries]  # type: ignore[index]
    assert last_ids[0] == "0"
    assert int(last_ids[1]) < int(last_ids[2])


def test_a_second_run_reads_only_what_changed_since(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    _seed(virtuous, 5)
    recipe = write_recipe(EXPORT)
    report(invoke("run", recipe, "--json"))
    again = report(invoke("run", recipe, "--json"))
    assert again["outcomes"]["unchanged"] == 5  # the overlap day is re-read, never re-written
    conditions = _queries(virtuous)[-1]["groups"][0]["conditions"]  # type: ignore[index]
    assert {"parameter": "Last Modified Date", "operator": "OnOrAfter"}.items() <= conditions[
        1
    ].items()
    virtuous.control("POST", "clock", json={"advanceSeconds": 5 * 86400})
    _seed(virtuous, 2, start=100)
    assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 2
    virtuous.control("POST", "clock", json={"advanceSeconds": 5 * 86400})
    _seed(virtuous, 1, start=200)
    fourth = report(invoke("run", recipe, "--json"))
    assert fourth["records_read"] == 3  # the 2 from the last run's day, and the new one
    assert fourth["outcomes"]["written"] == 1
    assert len((tmp_path / "gifts.csv").read_text().splitlines()) == 1 + 8


@pytest.mark.parametrize("delay", [0, 1.5], ids=["gateway-504", "client-timeout"])
def test_a_page_that_times_out_is_asked_for_smaller(
    monkeypatch, write_recipe, invoke, tmp_path, delay
) -> None:
    with serving(
        monkeypatch, full_query_timeout_take=2, full_query_timeout_delay=delay
    ) as emulator:
        _seed(emulator, 5)
        recipe = EXPORT.replace("page_size: 4}", "page_size: 4, timeout_seconds: 0.5}")
        result = report(invoke("run", write_recipe(recipe), "--json"))
        takes = [q["query"] for q in _queries(emulator)]
    assert result["outcomes"]["written"] == 5
    assert "take=4" in str(takes[0])
    assert sum("take=4" in str(t) for t in takes) == 1  # a timed-out page is not asked again
    assert any("take=1" in str(t) for t in takes)


def test_a_server_error_on_a_page_is_retried_at_the_same_size(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    _seed(virtuous, 10)
    virtuous.control(
        "POST", "faults", json={"error_rate": 0.5, "error_statuses": [500, 503], "seed": 3}
    )
    result = report(invoke("run", write_recipe(EXPORT), "--json"))
    log = virtuous.requests("/api/Gift/Query/FullGift")
    assert result["outcomes"]["written"] == 10
    assert any(r["status"] >= 500 for r in log)  # the faults did hit
    assert all("take=4" in r["query"] for r in log)  # and never shrank the page


def test_a_server_that_caps_the_page_below_page_size_still_yields_every_gift(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    # The reference gives two maximum takes (1000, and 500 in Virtuous's own n8n guide); a server
    # that clamps the take answers short pages that are not the last.
    with serving(monkeypatch, query_max_take=3) as emulator:
        _seed(emulator, 10)
        result = report(invoke("run", write_recipe(EXPORT), "--json"))
    assert result["records_read"] == 10
    assert result["outcomes"]["written"] == 10
    assert len((tmp_path / "gifts.csv").read_text().splitlines()) == 1 + 10
