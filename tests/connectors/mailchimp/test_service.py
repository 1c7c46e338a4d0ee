"""The mailchimp-marketing SDK on the central client: answers, errors, auth and retries."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest
from mailchimp_marketing.api.ping_api import PingApi
from mailchimp_marketing.api_client import ApiClientError

from connectors.mailchimp.sdk_client import CentralApiClient
from connectors.mailchimp.service import (
    MAX_CONNECTIONS,
    MailchimpRejected,
    MailchimpSettings,
    SdkResponse,
    call,
    lists_api,
    service_for,
    subscriber_hash,
)
from core.errors import AuthError, RetriableError
from core.http import Basic, RetryPolicy
from tests.connectors.mailchimp.conftest import API_KEY, LIST_ID


def settings(url: str, key: str = API_KEY) -> MailchimpSettings:
    return MailchimpSettings.model_validate({"api_key": key, "list_id": LIST_ID, "base_url": url})


def test_the_data_center_comes_from_the_key() -> None:
    plain = MailchimpSettings.model_validate({"api_key": "abc123-us21", "list_id": "x"})
    assert service_for(plain).base_url == "https://us21.api.mailchimp.com/3.0"
    with pytest.raises(ValueError, match="data center") as caught:
        MailchimpSettings.model_validate({"api_key": "nodatacenter", "list_id": "x"})
    # Recipes show the message (not pydantic's input echo), so it must not carry the key.
    assert "nodatacenter" not in caught.value.errors()[0]["msg"]


def test_subscriber_hash_is_md5_of_the_lowercased_address() -> None:
    assert subscriber_hash(" Ada@Example.ORG ") == "5bfcf2d8e394674550332640d72db509"


def test_json_answers_are_dicts_and_empty_ones_the_response(mailchimp, context) -> None:
    lists = lists_api(settings(mailchimp.url), context)
    member = call(
        lists.set_list_member,
        LIST_ID,
        subscriber_hash("ada@donors.org"),
        {"email_address": "ada@donors.org", "status_if_new": "subscribed"},
    )
    assert isinstance(member, dict)
    assert member["id"] == subscriber_hash("ada@donors.org")
    deleted = call(lists.delete_list_member, LIST_ID, member["id"])
    assert isinstance(deleted, SdkResponse)
    assert deleted.status_code == 204
    assert mailchimp.state.members[LIST_ID][member["id"]].status == "archived"
    # The request really went through the central client: its User-Agent, basic auth.
    assert mailchimp.requests("DELETE")


def test_the_sdk_raises_api_client_error_for_a_problem(mailchimp, context) -> None:
    lists = lists_api(settings(mailchimp.url), context)
    with pytest.raises(ApiClientError) as raw:
        lists.get_list_member(LIST_ID, "0" * 32)
    assert raw.value.status_code == 404
    assert "Resource Not Found" in raw.value.text  # problem+json stays text, as with requests
    with pytest.raises(MailchimpRejected, match="could not be found") as caught:
        call(lists.get_list_member, LIST_ID, "0" * 32)
    assert caught.value.status == 404


def test_a_fake_address_is_rejected_with_mailchimps_detail(mailchimp, context) -> None:
    lists = lists_api(settings(mailchimp.url), context)
    with pytest.raises(MailchimpRejected) as caught:
        call(
            lists.set_list_member,
            LIST_ID,
            subscriber_hash("bob@example.com"),
            {"email_address": "bob@example.com", "status_if_new": "subscribed"},
        )
    assert caught.value.status == 400
    assert "bob@example.com looks fake or invalid" in caught.value.message


def test_a_refused_key_is_an_auth_error_without_the_key(mailchimp, context) -> None:
    other = "wrongkey99887766-us1"
    lists = lists_api(settings(mailchimp.url, key=other), context)
    with pytest.raises(AuthError) as caught:
        call(lists.get_list_members_info, LIST_ID)
    assert caught.value.status == 401
    assert "Mailchimp" in str(caught.value)
    assert "API Key Invalid" in str(caught.value) or "API key" in str(caught.value)
    assert other not in str(caught.value)


def test_429_and_5xx_are_retried_by_the_central_client(mailchimp, context) -> None:
    mailchimp.state.faults.update(rate_limit_storm=2, storm_retry_after=0)
    lists = lists_api(settings(mailchimp.url), context)
    page = call(lists.get_list_members_info, LIST_ID)
    assert page["total_items"] == 0
    assert len(mailchimp.requests("GET", "/members")) == 3


def test_spent_retries_are_a_retriable_error(mailchimp, context) -> None:
    mailchimp.state.faults.update(error_rate=1.0, error_statuses=[503])
    quick = RetryPolicy(attempts=2, base_delay=0.01)
    service = dataclasses.replace(service_for(settings(mailchimp.url)), retry=quick)
    client = context.http_client(service, Basic("user", API_KEY))
    ping = PingApi(CentralApiClient(client, service.base_url))
    with pytest.raises(RetriableError, match="503"):
        call(ping.get)


def test_the_central_client_caps_connections_per_key(mailchimp, context) -> None:
    """Twenty-five threads on two clients of one key: the governor of the central client (not
    the sink's thread pool) keeps Mailchimp at ten connections, and none is turned away."""
    mailchimp.state.faults.update(latency_seconds=0.05)
    clients = [lists_api(settings(mailchimp.url), context) for _ in range(2)]
    with ThreadPoolExecutor(25) as pool:
        pages = [
            pool.submit(call, clients[n % 2].get_list_members_info, LIST_ID) for n in range(60)
        ]
        assert all(page.result()["total_items"] == 0 for page in pages)
    assert 1 < mailchimp.state.max_in_flight <= MAX_CONNECTIONS
    assert mailchimp.state.rejected_connections == 0
