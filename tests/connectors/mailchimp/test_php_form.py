"""The bracket-key form parser Mailchimp's webhook bodies need."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mailchimp.php_form import MAX_DEPTH, decode, encode

#: A profile delivery as Mailchimp documents it (percent-encoded as sent).
PROFILE = (
    "type=profile&fired_at=2009-03-26+21%3A31%3A21&data%5Bid%5D=8a25ff1d98"
    "&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40mailchimp.com"
    "&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com&data%5Bmerges%5D%5BFNAME%5D=Mail%C3%A9"
    "&data%5Bmerges%5D%5BADDRESS%5D%5Baddr1%5D=1+Main+St&data%5Bmerges%5D%5BADDRESS%5D%5Bcity%5D=X"
    "&data%5Bmerges%5D%5BGROUPINGS%5D%5B0%5D%5Bname%5D=Topics"
    "&data%5Bmerges%5D%5BGROUPINGS%5D%5B0%5D%5Bgroups%5D=News%2C+Events"
    "&data%5Bmerges%5D%5BGROUPINGS%5D%5B1%5D%5Bname%5D=Region"
)


def test_a_documented_profile_body_reads_as_nested_fields() -> None:
    assert decode(PROFILE.encode()) == {
        "type": "profile",
        "fired_at": "2009-03-26 21:31:21",
        "data": {
            "id": "8a25ff1d98",
            "list_id": "a6b5da1054",
            "email": "api@mailchimp.com",
            "merges": {
                "EMAIL": "api@mailchimp.com",
                "FNAME": "Mailé",
                "ADDRESS": {"addr1": "1 Main St", "city": "X"},
                "GROUPINGS": [{"name": "Topics", "groups": "News, Events"}, {"name": "Region"}],
            },
        },
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a[]=x&a[]=y", {"a": ["x", "y"]}),
        ("a[2]=x&a[]=y", {"a": {"2": "x", "3": "y"}}),  # PHP appends after the largest index
        ("a=1&a=2", {"a": "2"}),  # the later value wins
        ("a=1&a[b]=2", {"a": {"b": "2"}}),
        ("a[b=1", {"a[b": "1"}),  # brackets that do not close: the key as written
        ("a[b]c=1", {"a[b]c": "1"}),
        ("empty=&flag", {"empty": "", "flag": ""}),
        ("0=x&1=y", {"0": "x", "1": "y"}),  # the top level stays a mapping
        ("", {}),
        ("a[]=", {"a": [""]}),
    ],
)
def test_edge_cases_read_as_php_reads_them(body: str, expected: dict[str, Any]) -> None:
    assert decode(body) == expected


def test_nesting_beyond_the_limit_is_refused() -> None:
    assert decode("a" + "[b]" * (MAX_DEPTH - 1) + "=1")
    with pytest.raises(ValueError, match="nests deeper"):
        decode("a" + "[b]" * MAX_DEPTH + "=1")


def test_a_body_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode(b"type=\xff")


# Keys without brackets that are not numbers (a level of numbers reads back as a list).
_KEYS = st.text(
    alphabet=st.characters(blacklist_characters="[]", codec="utf-8"), min_size=1, max_size=8
).filter(lambda k: not k.isdigit())
_FORMS = st.recursive(
    st.text(max_size=8),
    lambda inner: st.dictionaries(_KEYS, inner, min_size=1, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(_KEYS, _FORMS, min_size=1, max_size=3))
def test_what_encode_writes_decode_reads_back(form: dict[str, Any]) -> None:
    assert decode(encode(form)) == form
