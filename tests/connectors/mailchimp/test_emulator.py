"""The Mailchimp emulator speaks the API the SDK and the docs describe."""

from __future__ import annotations

import threading

import httpx
import pytest

from connectors.mailchimp.emulator.store import subscriber_hash
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID, day, people

MEMBERS = f"/lists/{LIST_ID}/members"


@pytest.fixture
def api(mailchimp):
    with httpx.Client(base_url=mailchimp.url, auth=("anyuser", API_KEY), timeout=5) as client:
        yield client


def put(api, email, **body):
    return api.put(f"{MEMBERS}/{subscriber_hash(email)}", json={"email_address": email, **body})


def test_ping_needs_a_seeded_key(mailchimp, api) -> None:
    assert api.get("/ping").json() == {"health_status": "Everything's Chimpy!"}
    refused = httpx.get(f"{mailchimp.url}/ping", auth=("user", "nope-us1"))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["title"] == "API Key Invalid"


def test_put_creates_then_updates_with_status_if_new_only_on_create(api) -> None:
    created = put(api, "Ada@Donors.org", status_if_new="pending", merge_fields={"FNAME": "Ada"})
    assert created.status_code == 200
    assert created.json()["status"] == "pending"
    assert created.json()["id"] == subscriber_hash("ada@donors.org")
    first_change = created.json()["last_changed"]
    updated = put(
        api, "ada@donors.org", status_if_new="subscribed", merge_fields={"LNAME": "Lovelace"}
    )
    member = updated.json()
    assert member["status"] == "pending"
    assert member["merge_fields"]["FNAME"] == "Ada"
    assert member["merge_fields"]["LNAME"] == "Lovelace"
    assert member["last_changed"] >= first_change


def test_put_refuses_fake_addresses_and_mismatched_hashes(api) -> None:
    fake = put(api, "someone@example.com", status_if_new="subscribed")
    assert fake.status_code == 400
    assert fake.headers["content-type"].startswith("application/problem+json")
    body = fake.json()
    assert body["title"] == "Invalid Resource"
    assert body["status"] == 400
    assert body["detail"] == (
        "someone@example.com looks fake or invalid, please enter a real email address."
    )
    assert {"type", "instance"} <= set(body)
    other = api.put(
        f"{MEMBERS}/{subscriber_hash('a@donors.org')}",
        json={"email_address": "b@donors.org", "status_if_new": "subscribed"},
    )
    assert other.status_code == 400
    no_status = put(api, "c@donors.org")
    assert no_status.status_code == 400
    assert no_status.json()["errors"][0]["field"] == "status_if_new"


def test_an_unsubscribed_member_cannot_be_resubscribed_by_put(mailchimp, api) -> None:
    mailchimp.seed({"email_address": "gone@donors.org", "status": "unsubscribed"})
    answer = put(api, "gone@donors.org", status="subscribed")
    assert answer.status_code == 400
    assert answer.json()["title"] == "Member In Compliance State"


def test_the_address_itself_works_as_the_hash(api) -> None:
    put(api, "ada@donors.org", status_if_new="subscribed")
    assert api.get(f"{MEMBERS}/ada@donors.org").json()["email_address"] == "ada@donors.org"


def test_patch_delete_and_tags(api) -> None:
    put(api, "ada@donors.org", status_if_new="subscribed")
    target = f"{MEMBERS}/{subscriber_hash('ada@donors.org')}"
    tagged = api.post(
        f"{target}/tags",
        json={
            "tags": [{"name": "Donor", "status": "active"}, {"name": "Board", "status": "active"}]
        },
    )
    assert tagged.status_code == 204
    assert [t["name"] for t in api.get(target).json()["tags"]] == ["Donor", "Board"]
    api.post(f"{target}/tags", json={"tags": [{"name": "Board", "status": "inactive"}]})
    assert api.get(target).json()["tags_count"] == 1
    moved = api.patch(target, json={"email_address": "ada@lovelace.org"})
    assert moved.json()["id"] == subscriber_hash("ada@lovelace.org")
    assert api.get(target).status_code == 404
    deleted = api.delete(f"{MEMBERS}/{subscriber_hash('ada@lovelace.org')}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert api.get(f"{MEMBERS}/ada@lovelace.org").json()["status"] == "archived"


def test_unknown_list_is_404(api) -> None:
    answer = api.get("/lists/nope/members")
    assert answer.status_code == 404
    assert answer.json()["title"] == "Resource Not Found"


def test_listing_pages_filters_and_projects(mailchimp, api) -> None:
    mailchimp.seed(
        *people(5),
        {"email_address": "u@donors.org", "status": "unsubscribed", "last_changed": day(9)},
    )
    page = api.get(MEMBERS, params={"count": 2, "offset": 2}).json()
    assert page["total_items"] == 6
    assert page["list_id"] == LIST_ID
    assert [m["email_address"] for m in page["members"]] == [
        "donor3@donors.org",
        "donor4@donors.org",
    ]
    unsubscribed = api.get(MEMBERS, params={"status": "unsubscribed"}).json()
    assert [m["email_address"] for m in unsubscribed["members"]] == ["u@donors.org"]
    since = api.get(MEMBERS, params={"since_last_changed": day(4).isoformat()}).json()
    assert [m["email_address"] for m in since["members"]] == ["donor5@donors.org", "u@donors.org"]
    newest = api.get(
        MEMBERS, params={"sort_field": "last_changed", "sort_dir": "DESC", "count": 1}
    ).json()
    assert newest["members"][0]["email_address"] == "u@donors.org"
    slim = api.get(
        MEMBERS, params={"fields": "members.email_address,total_items", "count": 1}
    ).json()
    assert slim == {"members": [{"email_address": "donor1@donors.org"}], "total_items": 6}
    lean = api.get(MEMBERS, params={"exclude_fields": "members._links,_links"}).json()
    assert "_links" not in lean
    assert "_links" not in lean["members"][0]


def test_batch_subscribe_reports_each_members_fate(mailchimp, api) -> None:
    mailchimp.seed({"email_address": "old@donors.org", "status": "unsubscribed"})
    answer = api.post(
        f"/lists/{LIST_ID}",
        json={
            "update_existing": True,
            "members": [
                {
                    "email_address": "new@donors.org",
                    "status": "subscribed",
                    "merge_fields": {"FNAME": "New"},
                },
                {
                    "email_address": "old@donors.org",
                    "status": "subscribed",
                    "merge_fields": {"FNAME": "Old"},
                },
                {"email_address": "fake@example.com", "status": "subscribed"},
            ],
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert [m["email_address"] for m in body["new_members"]] == ["new@donors.org"]
    assert [m["email_address"] for m in body["updated_members"]] == ["old@donors.org"]
    # Mailchimp does not resubscribe an unsubscribed member through the batch endpoint.
    assert body["updated_members"][0]["status"] == "unsubscribed"
    assert body["updated_members"][0]["merge_fields"]["FNAME"] == "Old"
    assert body["errors"] == [
        {
            "email_address": "fake@example.com",
            "error": "fake@example.com looks fake or invalid, please enter a real email address.",
            "error_code": "ERROR_GENERIC",
        }
    ]
    again = api.post(
        f"/lists/{LIST_ID}",
        json={"members": [{"email_address": "new@donors.org", "status": "subscribed"}]},
    ).json()
    assert again["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    too_many = api.post(
        f"/lists/{LIST_ID}",
        json={
            "members": [
                {"email_address": f"m{i}@donors.org", "status": "subscribed"} for i in range(501)
            ]
        },
    )
    assert too_many.status_code == 400


def test_more_than_ten_connections_per_key_get_429(mailchimp) -> None:
    # Set off together and held a second each, so they overlap even on a loaded machine.
    mailchimp.state.faults.update(latency_seconds=1.0)
    statuses: list[int] = []
    together = threading.Barrier(13)

    def ping() -> None:
        together.wait()
        answer = httpx.get(f"{mailchimp.url}/ping", auth=("user", API_KEY), timeout=5)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.json()["title"] == "Too Many Requests"
            assert "TooManyConnections" in answer.json()["detail"]

    threads = [threading.Thread(target=ping) for _ in range(13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 10
    assert statuses.count(429) == 3
    assert mailchimp.state.max_in_flight == 10
    assert mailchimp.state.rejected_connections == 3


def test_control_plane_seeds_faults_and_resets(mailchimp) -> None:
    control = f"{mailchimp.server.url}/_emulator"
    seeded = httpx.post(
        f"{control}/seed",
        json={
            "lists": {"L2": "Volunteers"},
            "api_keys": ["second-us1"],
            "members": [
                {
                    "list_id": "L2",
                    "email_address": "v@donors.org",
                    "last_changed": "2024-02-01T00:00:00+00:00",
                }
            ],
        },
    )
    assert seeded.json() == {"members": 1, "lists": [LIST_ID, "L2"]}
    listed = httpx.get(f"{mailchimp.url}/lists/L2/members", auth=("u", "second-us1")).json()
    assert listed["members"][0]["last_changed"] == "2024-02-01T00:00:00+00:00"
    httpx.post(f"{control}/faults", json={"error_rate": 1, "error_statuses": [503]})
    assert httpx.get(f"{mailchimp.url}/ping", auth=("u", API_KEY)).status_code == 503
    state = httpx.get(f"{control}/state").json()
    assert state["lists"]["L2"][0]["email_address"] == "v@donors.org"
    assert httpx.post(f"{control}/reset").status_code == 204
    assert httpx.get(f"{mailchimp.url}/ping", auth=("u", API_KEY)).status_code == 200
    assert httpx.get(f"{control}/state").json()["lists"] == {LIST_ID: []}


def assert_problem(answer: httpx.Response, status: int) -> dict[str, object]:
    """A Mailchimp error: problem+json with every member the published document requires."""
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = answer.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    ("faults", "status", "title"),
    [
        ({"rate_limit_storm": 1, "storm_retry_after": 7}, 429, "Too Many Requests"),
        ({"error_rate": 1, "error_statuses": [500]}, 500, "Internal Server Error"),
        ({"error_rate": 1, "error_statuses": [502]}, 502, "Bad Gateway"),
        ({"error_rate": 1, "error_statuses": [503]}, 503, "Service Unavailable"),
        ({"timeout_rate": 1, "hang_seconds": 0.01}, 504, "Gateway Timeout"),
    ],
)
def test_injected_faults_answer_in_mailchimps_dialect(mailchimp, api, faults, status, title):
    mailchimp.state.faults.update(**faults)
    body = assert_problem(api.get("/ping"), status)
    assert body["title"] == title


def test_a_storm_keeps_its_retry_after(mailchimp, api) -> None:
    mailchimp.state.faults.update(rate_limit_storm=1, storm_retry_after=7)
    assert api.get("/ping").headers["retry-after"] == "7"


def test_an_unknown_route_or_method_is_a_problem_too(api) -> None:
    assert assert_problem(api.get("/nothing/here"), 404)["title"] == "Resource Not Found"
    assert assert_problem(api.delete("/ping"), 405)["title"] == "Method Not Allowed"
