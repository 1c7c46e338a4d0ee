"""JSON with exact numbers: a fraction read from JSON stays the decimal it was written as.

Donations arrive as JSON (files, APIs) and leave as JSON (files, state, dead letters); a float
on the way would turn ``0.1 + 0.2`` into ``0.30000000000000004``. :func:`parse_json` reads
fractions as :class:`JsonNumber` and :func:`to_json` writes them back as the same numbers, so a
record survives a trip through the dead-letter queue unchanged.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from core import limits


class JsonNumber(Decimal):
    """A number with a fraction or an exponent, read from a JSON file.

    Exact where a float is not (``0.1 + 0.2`` is ``0.3``; 17 digits stay 17 digits), and
    written back to JSON as the number it was read as. Arithmetic and transforms give plain
    ``Decimal``, which the file sinks write as text, as they write every other ``Decimal``.
    A float in a recipe expression (``record.amount * 1.5``) counts as the decimal it is
    written as, as ``to_decimal`` takes a float, where a plain ``Decimal`` would refuse it.
    """

    __slots__ = ()
    __hash__ = Decimal.__hash__


def _taking_floats_as_written(name: str) -> Any:
    method = getattr(Decimal, name)

    def taking(self: JsonNumber, other: Any) -> Any:
        return method(self, Decimal(repr(other)) if isinstance(other, float) else other)

    taking.__name__ = name
    return taking


for _name in (
    *(f"__{op}__" for op in ("eq", "ne", "lt", "le", "gt", "ge")),
    *(
        f"__{side}{op}__"
        for op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "divmod")
        for side in ("", "r")
    ),
):
    setattr(JsonNumber, _name, _taking_floats_as_written(_name))


def parse_json(text: str) -> Any:
    """``json.loads``, with fractional numbers read as :class:`JsonNumber`, never float."""
    return _EXACT.decode(text)


def to_json(value: Any, *, sort_keys: bool = False, ensure_ascii: bool = False) -> str:
    """``value`` as JSON text: a :class:`JsonNumber` as a number, another ``Decimal`` as plain
    text (``"100"``, never ``"1E+2"``), anything else JSON cannot say as ``str()`` of it."""
    try:
        return json.dumps(
            value, default=text_or_has_number, sort_keys=sort_keys, ensure_ascii=ensure_ascii
        )
    except HasJsonNumber:
        return _compose(value, sort_keys, ensure_ascii)


def plain_text(value: Any) -> str:
    """``str(value)``, except that a ``Decimal`` is written without an exponent, unless it is
    beyond any limit (``1E+999999999`` written out would be a gigabyte)."""
    if not isinstance(value, Decimal):
        return str(value)
    if value.is_finite() and -_WRITTEN_OUT < value.adjusted() < _WRITTEN_OUT:
        return format(value, "f")
    return str(value)


#: The most digits before or after the point :func:`plain_text` writes out in full.
_WRITTEN_OUT = 10_000


class HasJsonNumber(Exception):
    """The value holds a :class:`JsonNumber`, which ``json.dumps`` cannot write as a number:
    only :func:`to_json`'s slow road can."""


def text_or_has_number(value: Any) -> str:
    """The ``default=`` of a fast JSON encoder: :func:`plain_text` of what JSON cannot say, and
    :class:`HasJsonNumber` for a :class:`JsonNumber`, so the caller takes the slow road."""
    if isinstance(value, JsonNumber):
        raise HasJsonNumber
    return plain_text(value)


def _compose(value: Any, sort_keys: bool, ensure_ascii: bool) -> str:
    """The slow road of :func:`to_json`: containers by hand, so that numbers can be written raw."""
    if isinstance(value, JsonNumber):
        return str(value)  # Decimal's str() is always a valid JSON number: 1.50, 1E+2
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        pairs = (
            json.dumps(str(k), ensure_ascii=ensure_ascii)
            + ": "
            + _compose(v, sort_keys, ensure_ascii)
            for k, v in items
        )
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_compose(v, sort_keys, ensure_ascii) for v in value) + "]"
    return json.dumps(value, default=plain_text, ensure_ascii=ensure_ascii)


def parse_bounded_json(text: str) -> Any:
    """:func:`parse_json` for input from outside: a number over the digit limit of
    :mod:`core.limits` raises ``ValueError`` naming it, before it is built (Python would take
    seconds to build an integer of a million digits, and refuses one of over 4,300).

    Integers are checked only in text that holds a run of digits longer than the limit, so
    that the common line pays no Python call per integer.
    """
    if _digit_run(limits.current().digits).search(text):
        return _BOUNDED.decode(text)
    return _FRACTIONS_BOUNDED.decode(text)


@lru_cache(maxsize=4)
def _digit_run(digits: int) -> re.Pattern[str]:
    return re.compile(f"[0-9]{{{digits + 1}}}")


def _bounded_integer(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > limits.current().digits:
        raise limits.too_large(limits.quote_number(text))
    return int(text)


def _bounded_fraction(text: str) -> JsonNumber:
    try:
        number = JsonNumber(text)
    except InvalidOperation:  # an exponent beyond what Decimal holds: 1e99999999999999999999
        raise limits.too_large(limits.quote_number(text)) from None
    limits.check_number(number, limits.quote_number(text))
    return number


# Decoders built once: json.loads with hooks builds a new one for every call.
_EXACT = json.JSONDecoder(parse_float=JsonNumber)
_FRACTIONS_BOUNDED = json.JSONDecoder(parse_float=_bounded_fraction)
_BOUNDED = json.JSONDecoder(parse_float=_bounded_fraction, parse_int=_bounded_integer)
