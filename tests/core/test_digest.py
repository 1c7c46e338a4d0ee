"""Digests and reused encoders write exactly what json.dumps wrote: ledgers keep their meaning."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.digest import exact_json_encoder, json_encoder, payload_digest
from core.json_numbers import JsonNumber, to_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # lone surrogates included
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.dates()
)
PAYLOADS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def old_digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@settings(max_examples=300, derandomize=True)
@given(PAYLOADS)
def test_the_digest_is_the_one_every_existing_ledger_holds(payload: Any) -> None:
    assert payload_digest(payload) == old_digest(payload)


@settings(max_examples=300, derandomize=True)
@given(PAYLOADS, st.booleans(), st.booleans())
def test_the_exact_encoder_writes_what_to_json_writes(
    value: Any, sort_keys: bool, ensure_ascii: bool
) -> None:
    encode = exact_json_encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    assert encode(value) == to_json(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii)


def test_exact_numbers_and_other_values_keep_their_form() -> None:
    record = {"b": JsonNumber("1.50"), "a": [Decimal("1E+2"), date(2025, 1, 2)], "c": "\udc80"}
    encode = exact_json_encoder(sort_keys=True, ensure_ascii=True)
    assert encode(record) == '{"a": ["100", "2025-01-02"], "b": 1.50, "c": "\\udc80"}'
    assert encode(record) == to_json(record, sort_keys=True, ensure_ascii=True)


def test_one_encoder_serves_many_values_in_turn() -> None:
    encode = json_encoder(sort_keys=True, separators=(",", ":"), default=str)
    values = [{"x": i, "when": date(2025, 1, i)} for i in range(1, 30)]
    assert [encode(v) for v in values] == [
        json.dumps(v, sort_keys=True, separators=(",", ":"), default=str) for v in values
    ]


def test_a_value_json_cannot_write_without_a_default_is_refused_as_json_dumps_does() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_encoder()({"when": date(2025, 1, 2)})
