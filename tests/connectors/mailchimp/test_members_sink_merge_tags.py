"""Merge tags the audience does not have: found before anything is sent.

What Mailchimp does with such a tag is not documented (the value may be dropped without a word,
or the member refused), so the sink reads the audience's merge fields once per run and
dead-letters a member whose payload names a tag the audience lacks; the rest of the run goes on.
"""

from __future__ import annotations

import pytest

from connectors.mailchimp.emulator.store import subscriber_hash
from tests.conftest import write_jsonl
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, report, serving

RECIPE = """
version: 1
name: shirts-to-mailchimp
source:
  use: file.jsonl
  with: {{path: people.jsonl, key: id}}
map:
  email_address: record.email
  merge_fields:
    FNAME: record.first
    shirt: record.shirt
sink:
  use: mailchimp.members
  with: {{api_key: "${{MC_KEY}}", list_id: L1, base_url: "${{MC_URL}}"{extra}}}
"""


@pytest.fixture(params=["ignored", "refused"], ids=["Mailchimp ignores it", "Mailchimp refuses it"])
def mailchimp(request: pytest.FixtureRequest):
    with serving(unknown_merge_fields=request.param) as emulator:
        yield emulator


@pytest.fixture
def run(mailchimp, monkeypatch, write_recipe, invoke, tmp_path):
    monkeypatch.setenv("MC_KEY", API_KEY)
    monkeypatch.setenv("MC_URL", mailchimp.url)

    def go(rows, extra=""):
        write_jsonl(tmp_path / "people.jsonl", rows)
        return invoke("run", write_recipe(RECIPE.format(extra=extra)), "--json")

    return go


ROWS = [
    {"id": "p1", "email": "p1@donors.org", "first": "Ada", "shirt": "M"},
    {"id": "p2", "email": "p2@donors.org", "first": "Grace"},  # no shirt: nothing to send
    {"id": "p3", "email": "p3@donors.org", "first": "Alan", "shirt": "L"},
]


def held(mailchimp, n: int):
    return mailchimp.state.members[LIST_ID].get(subscriber_hash(f"p{n}@donors.org"))


@pytest.mark.parametrize("threshold", [1000, 0], ids=["member by member", "batch endpoint"])
def test_a_tag_the_audience_lacks_is_dead_lettered_naming_it(mailchimp, run, threshold) -> None:
    result = run(ROWS, extra=f", batch_threshold: {threshold}")
    assert result.exit_code == 1, result.output
    outcome = report(result)
    assert (outcome["outcomes"]["written"], outcome["outcomes"]["invalid"]) == (1, 2)
    problems = {p["key"]: p for p in outcome["problems"]}
    assert set(problems) == {"p1", "p3"}
    assert problems["p1"]["field"] == "merge_fields.SHIRT"
    assert problems["p1"]["reason"] == (
        "the audience has no merge field SHIRT (it has FNAME, LNAME, ADDRESS, PHONE, BIRTHDAY)"
    )
    assert held(mailchimp, 1) is None
    assert held(mailchimp, 2).merge_fields["FNAME"] == "Grace"
    # The audience's fields were read once for the run, not once per member.
    assert len(mailchimp.requests("GET", "/merge-fields")) == 1


def test_the_check_can_be_switched_off(mailchimp, run) -> None:
    outcome = report(run(ROWS, extra=", check_merge_fields: false"))
    assert mailchimp.requests("GET", "/merge-fields") == []
    if mailchimp.state.settings.unknown_merge_fields == "ignored":
        assert outcome["outcomes"]["written"] == 3
    else:  # Mailchimp's own refusal names the tag
        assert outcome["outcomes"]["invalid"] == 2
        assert all("SHIRT" in p["reason"] for p in outcome["problems"])


def test_plan_refuses_a_tag_the_audience_lacks_as_the_run_does(
    mailchimp, monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    monkeypatch.setenv("MC_KEY", API_KEY)
    monkeypatch.setenv("MC_URL", mailchimp.url)
    write_jsonl(tmp_path / "people.jsonl", ROWS)
    recipe = write_recipe(RECIPE.format(extra=""))
    planned = report(invoke("plan", recipe, "--json"))
    assert held(mailchimp, 2) is None  # the plan wrote nothing
    ran = report(invoke("run", recipe, "--json"))
    assert planned["outcomes"] == ran["outcomes"]
    assert (ran["outcomes"]["written"], ran["outcomes"]["invalid"]) == (1, 2)
