"""Payload digests, and JSON encoders built once instead of once per record.

The ledger tells a changed record from the same one by a digest of its payload. Its text must
never change: a ledger written by an earlier version compares digests made the same way, and a
different text would turn every record ``updated``. So :func:`payload_digest` is sha256 of what
``json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))`` writes, exactly.

``json.dumps`` with any argument builds a new encoder on every call, which costs as much as the
encoding of a small payload. :func:`json_encoder` builds one and keeps it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from json import encoder as _json_encoder
from typing import Any

from core.json_numbers import HasJsonNumber, text_or_has_number, to_json

Encode = Callable[[Any], str]


def json_encoder(
    *,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    separators: tuple[str, str] = (", ", ": "),
    default: Callable[[Any], Any] | None = None,
) -> Encode:
    """A function writing what ``json.dumps`` with these arguments writes, reusing one encoder.

    It does not look for reference cycles (``check_circular``): a payload or record is a tree
    read from JSON, CSV or a mapping; a cycle ends in ``RecursionError`` instead of ``ValueError``.
    """
    item_separator, key_separator = separators
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        slow = json.JSONEncoder(
            sort_keys=sort_keys, ensure_ascii=ensure_ascii, separators=separators, default=default
        )
        return slow.encode
    strings = (
        _json_encoder.encode_basestring_ascii if ensure_ascii else _json_encoder.encode_basestring
    )
    refuse = json.JSONEncoder().default
    chunks = make(
        None,
        default or refuse,
        strings,
        None,
        key_separator,
        item_separator,
        sort_keys,
        False,
        True,
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_digest_text = json_encoder(sort_keys=True, default=str, separators=(",", ":"))


def payload_digest(payload: Any) -> str:
    """A stable hash of a payload: key order and number formatting do not change it."""
    return hashlib.sha256(_digest_text(payload).encode()).hexdigest()


def exact_json_encoder(*, sort_keys: bool = False, ensure_ascii: bool = False) -> Encode:
    """:func:`core.json_numbers.to_json` with these arguments, reusing one encoder: the same
    text, for the price of the encoding alone (a value holding a :class:`JsonNumber` still takes
    ``to_json``'s slow road)."""
    fast = json_encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=text_or_has_number)

    def encode(value: Any) -> str:
        try:
            return fast(value)
        except HasJsonNumber:
            return to_json(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii)

    return encode
