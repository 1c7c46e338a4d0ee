"""`connector plan` and `run --dry-run` against the Virtuous emulator: what they predict is what
the real run then does (issue 12, seen 6: the dry run said `written 3` where the run did
`updated 2, needs_review 1`)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import write_jsonl
from tests.connectors.virtuous.support import (
    KEY,
    REFUNDS_RECIPE,
    donations_csv,
    gifts_recipe,
    report,
)

PEOPLE = [
    {"id": "u-1", "email": "ada@example.org", "first": "Augusta Ada"},
    {"id": "u-2", "email": "grace@example.org", "first": "Grace B."},
    {"id": "u-3", "email": "nobody@example.org", "first": "Nobody"},
]

UPDATES = """\
version: 1
name: updates
source: {use: file.jsonl, with: {path: people.jsonl, key: id}}
map:
  email: record.email
  firstName: record.first
sink:
  use: virtuous.contacts
  with: {base_url: "${VIRTUOUS_BASE_URL}", api_key: "${VIRTUOUS_API_KEY}"}
"""


def _outcomes(result: Any) -> dict[str, int]:
    return {k: v for k, v in report(result)["outcomes"].items() if v}


def test_the_plan_of_contact_updates_is_what_the_run_does(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    virtuous.control(
        "POST",
        "seed",
        json={
            "contacts": [
                {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org"},
                {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.org"},
            ]
        },
    )
    write_jsonl(tmp_path / "people.jsonl", PEOPLE)
    recipe = write_recipe(UPDATES)
    expected = {"updated": 2, "needs_review": 1}

    assert _outcomes(invoke("plan", recipe, "--json")) == expected
    assert _outcomes(invoke("run", recipe, "--dry-run", "--json")) == expected
    assert not virtuous.requests("/api/Contact/1")  # nothing was written meanwhile
    assert _outcomes(invoke("run", recipe, "--json")) == expected


def test_the_plan_of_changed_gifts_is_what_the_run_does(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    recipe = write_recipe(gifts_recipe())
    donations_csv(tmp_path / "donations.csv", 3)
    assert _outcomes(invoke("run", recipe, "--json")) == {"written": 3}
    donations_csv(tmp_path / "donations.csv", 5, **{"g-2": {"cents": "9999"}})
    expected = {"written": 2, "unchanged": 2, "needs_review": 1}

    planned = report(invoke("plan", recipe, "--json"))
    assert {k: v for k, v in planned["outcomes"].items() if v} == expected
    assert planned["money"] == {"USD": "20.09"}  # 10.04 + 10.05: the two new gifts
    assert _outcomes(invoke("run", recipe, "--json")) == expected


def test_plan_shows_the_payloads_it_would_send_without_secrets(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    recipe = write_recipe(
        gifts_recipe().replace("\n  contact:", "\n  notes: \"'${VIRTUOUS_API_KEY}'\"\n  contact:")
    )
    donations_csv(tmp_path / "donations.csv", 3)
    shown = invoke("plan", recipe, "--show", "2")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count('"transactionId"') == 2
    assert '"g-1"' in shown.stdout
    assert '"g-3"' not in shown.stdout
    assert KEY not in shown.output
    as_json = json.loads(invoke("plan", recipe, "--show", "1", "--json").stdout)
    assert [p["transactionId"] for p in as_json["payloads"]] == ["g-1"]
    assert KEY not in json.dumps(as_json)
    assert not virtuous.requests("/api/v2/Gift/Transactions")


def test_a_dry_run_points_at_nothing_it_did_not_write(
    virtuous, write_recipe, invoke, tmp_path
) -> None:
    recipe = write_recipe(gifts_recipe())
    donations_csv(tmp_path / "donations.csv", 2, **{"g-1": {"date": "not a date"}})
    result = invoke("run", recipe, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "invalid" in result.stdout
    assert "dlq list" not in result.output  # a dry run dead-letters nothing: it would show 0
    assert "connector run" in result.output


def test_the_plan_of_refunds_is_what_the_run_does(virtuous, write_recipe, invoke, tmp_path) -> None:
    donations_csv(tmp_path / "donations.csv", 2)
    assert invoke("run", write_recipe(gifts_recipe(), "gifts.yaml")).exit_code == 0
    virtuous.import_now()
    donations_csv(tmp_path / "donations.csv", 3)  # g-3 waits in the import
    assert invoke("run", tmp_path / "gifts.yaml").exit_code == 0
    refunds = [
        {"id": "re_1", "gift": "g-1", "date": "2025-03-05", "cents": 1001},  # whole: reversed
        {"id": "re_2", "gift": "g-2", "date": "2025-03-05", "cents": 500},  # partial
        {"id": "re_3", "gift": "g-3", "date": "2025-03-05", "cents": 1003},  # not a gift yet
    ]
    write_jsonl(tmp_path / "refunds.jsonl", refunds)
    recipe = write_recipe(REFUNDS_RECIPE, "refunds.yaml")
    expected = {"written": 1, "needs_review": 2}

    assert _outcomes(invoke("plan", recipe, "--json")) == expected
    assert not virtuous.requests("/api/Gift/ReversingTransaction")
    assert _outcomes(invoke("run", recipe, "--json")) == expected
