"""An ADDRESS merge field through the members sink: whole, or not at all.

Mailchimp refuses an address that lacks any of addr1, city, state and zip. A contact without an
address must not blank the one Mailchimp holds, and a contact with part of one is dead-lettered
saying which parts are missing, before anything is sent; the rest of the run goes on.
"""

from __future__ import annotations

import pytest

from connectors.mailchimp.emulator.store import subscriber_hash
from tests.conftest import write_jsonl
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, report, serving

RECIPE = """
version: 1
name: contacts-to-mailchimp
source:
  use: file.jsonl
  with: {{path: contacts.jsonl, key: id}}
map:
  email_address: record.email
  merge_fields:
    FNAME: record.first
    ADDRESS:
      addr1: record.street
      city: record.city
      state: record.state
      zip: record.zip
      country: record.country
sink:
  use: mailchimp.members
  with: {{api_key: "${{MC_KEY}}", list_id: L1, base_url: "${{MC_URL}}",
         batch_threshold: {threshold}}}
"""

WHOLE = {"street": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701"}


def contact(n: int, **address: object) -> dict[str, object]:
    return {"id": f"c{n}", "email": f"c{n}@donors.org", "first": f"First{n}", **address}


@pytest.fixture(params=[False, True], ids=["country optional", "country required"])
def mailchimp(request: pytest.FixtureRequest):
    with serving(address_country_required=request.param) as emulator:
        yield emulator


@pytest.fixture(params=[1000, 0], ids=["member by member", "batch endpoint"])
def run(request, mailchimp, monkeypatch, write_recipe, invoke, tmp_path):
    monkeypatch.setenv("MC_KEY", API_KEY)
    monkeypatch.setenv("MC_URL", mailchimp.url)

    def go(rows):
        write_jsonl(tmp_path / "contacts.jsonl", rows)
        return invoke("run", write_recipe(RECIPE.format(threshold=request.param)), "--json")

    return go


def held(mailchimp, n: int):
    return mailchimp.state.members[LIST_ID].get(subscriber_hash(f"c{n}@donors.org"))


def test_a_partial_address_is_dead_lettered_naming_what_is_missing(mailchimp, run) -> None:
    rows = [
        contact(1, **WHOLE, country="US"),
        contact(2, **{**WHOLE, "city": None, "zip": ""}),  # no city, an empty zip
        contact(3, **{**WHOLE, "country": "US", "street": "  "}),
        contact(4, **WHOLE, country="US"),
    ]
    result = run(rows)
    assert result.exit_code == 1, result.output
    outcome = report(result)
    assert outcome["outcomes"]["written"] == 2
    assert outcome["outcomes"]["invalid"] == 2
    problems = {p["key"]: p for p in outcome["problems"]}
    assert problems["c2"]["reason"] == (
        "ADDRESS is missing city, zip; Mailchimp refuses a partial address"
    )
    assert problems["c3"]["reason"] == (
        "ADDRESS is missing addr1; Mailchimp refuses a partial address"
    )
    assert problems["c2"]["field"].startswith("merge_fields")
    assert held(mailchimp, 2) is None
    assert held(mailchimp, 3) is None
    assert held(mailchimp, 4).merge_fields["ADDRESS"]["city"] == "Springfield"


def test_no_address_at_all_is_left_out_and_blanks_nothing(mailchimp, run) -> None:
    mailchimp.seed(
        {
            "email_address": "c1@donors.org",
            "merge_fields": {
                "ADDRESS": {
                    "addr1": "9 Elm St",
                    "city": "Salem",
                    "state": "MA",
                    "zip": "01970",
                    "country": "US",
                }
            },
        }
    )
    blank = {"street": "", "city": "", "state": None, "zip": " ", "country": ""}
    outcome = report(run([contact(1, **blank), contact(2)]))
    assert outcome["outcomes"]["written"] == 2, outcome["problems"]
    assert held(mailchimp, 1).merge_fields["ADDRESS"]["addr1"] == "9 Elm St"
    assert held(mailchimp, 1).merge_fields["FNAME"] == "First1"
    assert "ADDRESS" not in held(mailchimp, 2).merge_fields


def test_a_whole_address_without_a_country(mailchimp, run) -> None:
    """Whether Mailchimp takes an address without a country is not settled: where it does, the
    member is written; where it does not, the member is dead-lettered with Mailchimp's reason,
    and either way the rest of the run goes on."""
    outcome = report(run([contact(1, **WHOLE), contact(2, **WHOLE, country="GB")]))
    assert held(mailchimp, 2).merge_fields["ADDRESS"]["country"] == "GB"
    if mailchimp.state.settings.address_country_required:
        assert (outcome["outcomes"]["written"], outcome["outcomes"]["invalid"]) == (1, 1)
        (problem,) = outcome["problems"]
        assert problem["key"] == "c1"
        assert "ADDRESS" in problem["reason"]
        assert "country" in problem["reason"]
        assert held(mailchimp, 1) is None
    else:
        assert outcome["outcomes"]["written"] == 2
        assert held(mailchimp, 1).merge_fields["ADDRESS"]["country"] == "US"
