"""The Mailchimp emulator of ``connector sandbox``: the one audience it prints, and nothing else."""

from __future__ import annotations

import warnings

from connectors.mailchimp.emulator.sandbox import API_KEY, LIST_ID, MailchimpSandbox

with warnings.catch_warnings():
    # starlette 1.x nudges towards httpx2 at import; the httpx it has is fine for tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_a_subscriber_s_change_lands_in_the_audience_the_sandbox_prints() -> None:
    sandbox = MailchimpSandbox()
    with TestClient(sandbox.create_app()) as client:
        client.post("/_emulator/seed", json=dict(sandbox.seed_data())).raise_for_status()
        # As docs/webhooks.md shows it: no list_id, so the emulator's only audience.
        change = {"as": "user", "email_address": "sam@example.org", "merge_fields": {"FNAME": "X"}}
        client.post("/_emulator/act", json=change).raise_for_status()
        member = client.get(f"/3.0/lists/{LIST_ID}/members/sam@example.org", auth=("any", API_KEY))
        audiences = client.get("/_emulator/state").json()["lists"]
    assert list(audiences) == [LIST_ID]
    assert member.json()["merge_fields"]["FNAME"] == "X"
