"""Designations checked against Virtuous's projects before a gift is sent, through the CLI."""

from __future__ import annotations

import json
import time

from tests.connectors.virtuous.support import KEY, donations_csv, gifts_recipe, report, serving

PROJECTS = [
    {"id": 11, "name": "General Fund", "projectCode": "GENERAL"},
    {"id": 12, "name": "Scholarships", "projectCode": "SCHOLARSHIP"},
    {"id": 13, "name": "Missions", "projectCode": "MISSIONS"},
]
PROJECT_QUERY = "/api/Project/Query"
TRANSACTIONS = ("/api/v2/Gift/Transactions", "/api/v2/Gift/Transaction")


def designated(designation: str = "code: record.fund", **settings: object) -> str:
    """The gifts recipe, each gift's whole amount designated by ``designation``, and ``settings``
    added to the sink's."""
    recipe = gifts_recipe(batch=10).replace(
        "  giftType: \"'Credit'\"\n",
        "  giftType: \"'Credit'\"\n  designations:\n"
        f"    - {designation}\n"
        "      amountDesignated: record.cents | to_int | minor_to_major(record.currency)\n",
    )
    return recipe + "".join(
        f"    {name}: {json.dumps(value)}\n" for name, value in settings.items()
    )


def test_a_gift_naming_no_project_is_dead_lettered_with_the_closest_and_the_rest_written(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    donations_csv(tmp_path / "donations.csv", 4, **{"g-2": {"fund": "SCHOLAR"}})
    recipe = write_recipe(designated())
    result = invoke("run", recipe, "--json")
    assert result.exit_code == 1, result.output
    outcomes = report(result)["outcomes"]
    assert outcomes == {**outcomes, "written": 3, "invalid": 1}
    (letter,) = json.loads(invoke("dlq", "list", recipe, "--json").stdout)
    assert letter["key"] == "g-2"
    assert letter["outcome"] == "invalid"
    assert letter["field"] == "designations.0.code"
    assert "no project 'SCHOLAR'; did you mean 'SCHOLARSHIP'?" in letter["reason"]
    pending = sorted(p["transactionId"] for p in virtuous.state()["pending"])
    assert pending == ["g-1", "g-3", "g-4"]


def test_the_projects_are_read_once_then_cached_for_the_time_set(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    recipe = write_recipe(designated(projects_cache_minutes=60))
    for start in (1, 11):  # new gifts each run: gifts already sent are not checked again
        donations_csv(tmp_path / "donations.csv", 5, start=start)
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 5
    assert len(virtuous.requests(PROJECT_QUERY)) == 1  # five gifts, two runs, one read
    time.sleep(0.1)
    donations_csv(tmp_path / "donations.csv", 5, start=21)
    stale = write_recipe(designated(projects_cache_minutes=0.001))  # 60 ms: long gone
    assert report(invoke("run", stale, "--json"))["outcomes"]["written"] == 5
    assert len(virtuous.requests(PROJECT_QUERY)) == 2


def test_a_project_created_since_the_cache_was_filled_is_found(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    recipe = write_recipe(designated())
    donations_csv(tmp_path / "donations.csv", 2)
    report(invoke("run", recipe, "--json"))
    virtuous.control("POST", "seed", json={"projects": [{"name": "Wells", "code": "WELLS"}]})
    donations_csv(tmp_path / "donations.csv", 2, start=3, **{"g-4": {"fund": "wells"}})
    result = report(invoke("run", recipe, "--json"))
    assert result["outcomes"]["written"] == 2
    assert len(virtuous.requests(PROJECT_QUERY)) == 2  # the miss read them afresh, once


def test_the_off_switch_sends_every_gift_unchecked(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    donations_csv(tmp_path / "donations.csv", 3, **{"g-2": {"fund": "SCHOLAR"}})
    result = invoke("run", write_recipe(designated(check_designations=False)), "--json")
    assert result.exit_code == 0, result.output
    assert report(result)["outcomes"]["written"] == 3
    assert virtuous.requests(PROJECT_QUERY) == []
    # What the check would have spared: a gift set aside by the import, for a person to place.
    assert [n["transactionId"] for n in virtuous.import_now()["needsUpdate"]] == ["g-2"]


def test_many_projects_are_read_page_by_page(monkeypatch, write_recipe, invoke, tmp_path) -> None:
    # The server caps a page below the 1,000 asked for: every page is read all the same.
    with serving(monkeypatch, query_max_take=100) as emulator:
        many = [{"name": f"Project {n}", "code": f"P{n:04d}"} for n in range(1, 251)]
        emulator.control("POST", "seed", json={"projects": many})
        fund = {"g-1": {"fund": "P0001"}, "g-2": {"fund": "p0250"}, "g-3": {"fund": "P0251"}}
        donations_csv(tmp_path / "donations.csv", 3, **fund)
        result = report(invoke("run", write_recipe(designated()), "--json"))
        pages = emulator.requests(PROJECT_QUERY)
    assert result["outcomes"] == {**result["outcomes"], "written": 2, "invalid": 1}
    (problem,) = result["problems"]
    assert problem["key"] == "g-3"
    assert problem["reason"].startswith("no project 'P0251'; did you mean 'P0250'")
    assert len(pages) == 3


def test_a_dry_run_shows_the_gift_it_would_dead_letter_and_sends_nothing(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    donations_csv(tmp_path / "donations.csv", 3, **{"g-3": {"fund": "MISSION"}})
    recipe = write_recipe(designated())
    result = invoke("run", recipe, "--dry-run", "--json")
    assert result.exit_code == 1, result.output
    outcome = report(result)
    assert outcome["outcomes"] == {**outcome["outcomes"], "written": 2, "invalid": 1}
    assert outcome["problems"][0]["reason"] == "no project 'MISSION'; did you mean 'MISSIONS'?"
    assert [r for r in virtuous.requests() if r["path"] in TRANSACTIONS] == []
    assert json.loads(invoke("dlq", "list", recipe, "--json").stdout) == []


def test_ids_names_and_any_case_match_as_at_the_import(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    rows = {"g-1": {"fund": "general fund"}, "g-2": {"fund": " scholarships "}}
    donations_csv(tmp_path / "donations.csv", 3, **rows, **{"g-3": {"fund": "Mission"}})
    by_name = report(invoke("run", write_recipe(designated("name: record.fund")), "--json"))
    assert by_name["outcomes"] == {**by_name["outcomes"], "written": 2, "invalid": 1}
    assert by_name["problems"][0]["reason"] == ("no project 'Mission'; did you mean 'Missions'?")
    donations_csv(tmp_path / "donations.csv", 2, start=4, **{"g-5": {"fund": "99"}})
    by_id = write_recipe(designated("id: '13 if record.id == \"g-4\" else record.fund'"), "id.yaml")
    result = report(invoke("run", by_id, "--json"))
    assert result["outcomes"] == {**result["outcomes"], "written": 1, "invalid": 1}
    assert result["problems"][0] == {
        **result["problems"][0],
        "key": "g-5",
        "field": "designations.0.id",
        "reason": "no project with id 99 among Virtuous's 3 projects",
    }
    virtuous.import_now()
    assert virtuous.state()["needsUpdate"] == []  # every gift sent was placed


def test_a_name_given_as_a_code_is_pointed_out(virtuous, write_recipe, invoke, tmp_path) -> None:
    virtuous.control("POST", "seed", json={"projects": PROJECTS})
    donations_csv(tmp_path / "donations.csv", 1, **{"g-1": {"fund": "Scholarships"}})
    result = report(invoke("run", write_recipe(designated()), "--json"))
    assert result["problems"][0]["reason"] == (
        "no project 'Scholarships'; 'Scholarships' is the name of project 'SCHOLARSHIP'"
    )


def test_an_inactive_project_is_sent_unless_refused(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    closed = {"name": "Old Appeal", "projectCode": "OLD", "isActive": False}
    virtuous.control("POST", "seed", json={"projects": [*PROJECTS, closed]})
    donations_csv(tmp_path / "donations.csv", 2, **{"g-1": {"fund": "OLD"}, "g-2": {"fund": "OLD"}})
    sent = invoke("run", write_recipe(designated()), "--json")
    assert report(sent)["outcomes"]["written"] == 2
    logged = " ".join(sent.stderr.split())
    assert logged.count("inactive Virtuous project 'OLD' are sent") == 1  # once, not per gift
    donations_csv(tmp_path / "donations.csv", 1, start=3, **{"g-3": {"fund": "OLD"}})
    refusing = write_recipe(designated(inactive_projects="refuse"), "refusing.yaml")
    refused = report(invoke("run", refusing, "--json"))
    assert refused["problems"][0]["reason"] == (
        "project 'OLD' is inactive in Virtuous (inactive_projects: refuse)"
    )


def test_a_key_that_may_not_read_projects_stops_the_run_saying_how_to_go_on(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    gifts_only = {"org": "org-1", "permissions": ["gifts:read", "gifts:write"]}
    with serving(monkeypatch, api_keys={KEY: gifts_only}) as emulator:
        donations_csv(tmp_path / "donations.csv", 2)
        result = invoke("run", write_recipe(designated()))
        sent = [r for r in emulator.requests() if r["path"] in TRANSACTIONS]
    assert result.exit_code == 3
    assert "cannot read Virtuous's projects to check designations" in result.stderr
    assert "check_designations: false" in result.stderr
    assert sent == []


def test_a_refused_key_is_told_as_such_without_pointing_at_the_designation_check(
    virtuous, monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    monkeypatch.setenv("VIRTUOUS_API_KEY", "not-the-key")
    donations_csv(tmp_path / "donations.csv", 1)
    result = invoke("run", write_recipe(designated()))
    assert result.exit_code == 3
    assert "Virtuous refused the API key (401)" in result.stderr
    assert "check_designations" not in result.stderr
