"""How large a value from outside may grow, so that no one record can stall or exhaust a run.

Broken or hostile input (an amount of ``1e999999``, a JSON line nested 5,000 deep, a 2 GB cell,
``'x' * 10000000000`` in an expression) must cost one dead letter, not minutes or gigabytes. These
limits bound what the file readers accept and what transforms and recipe expressions build. A value
over one is refused with a reason that names the limit; its record is dead-lettered and the run
goes on.

Each limit is set by an environment variable (or the recipe's ``.env``), read when a recipe loads:

=========================  =========  ===========================================================
variable                   default    bounds
=========================  =========  ===========================================================
``CONNECTOR_MAX_DIGITS``   40         digits of a number before its decimal point, and how far
                                      after it its first digit may stand
``CONNECTOR_MAX_LENGTH``   1,000,000  characters of a text or items of a list a value may have,
                                      and characters of one input record (a line, a CSV row)
``CONNECTOR_MAX_DEPTH``    100        lists and objects nested in one another
=========================  =========  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

__all__ = [
    "Limits",
    "check_length",
    "check_number",
    "configure",
    "current",
    "quote_number",
    "too_large",
]

_VARIABLES = {
    "digits": "CONNECTOR_MAX_DIGITS",
    "length": "CONNECTOR_MAX_LENGTH",
    "depth": "CONNECTOR_MAX_DEPTH",
}


@dataclass(frozen=True)
class Limits:
    """The limits in force; see the module docstring for what each bounds."""

    digits: int = 40
    length: int = 1_000_000
    depth: int = 100

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Limits:
        """The limits ``env`` sets, the defaults for the rest; ``ValueError`` names a bad one."""
        values: dict[str, int] = {}
        for field in fields(cls):
            variable = _VARIABLES[field.name]
            text = env.get(variable, "").strip().replace("_", "").replace(",", "")
            if not text:
                continue
            if not text.isdigit() or not 0 < int(text) <= 1_000_000_000:
                msg = f"{variable} must be a whole number from 1 to 1,000,000,000, not {text!r}"
                raise ValueError(msg)
            values[field.name] = int(text)
        return cls(**values)

    def variable(self, name: str) -> str:
        return _VARIABLES[name]


_current = Limits()
#: ``10 ** digits``: the hot paths compare an int with it rather than count its digits.
LARGEST = 10**_current.digits


def current() -> Limits:
    return _current


def configure(limits: Limits) -> None:
    """Put ``limits`` in force for the process (a recipe's load does it from its environment)."""
    global _current, LARGEST
    _current = limits
    LARGEST = 10**limits.digits


def check_number(number: Decimal | int, shown: str) -> None:
    """Refuse a number with more digits than :attr:`Limits.digits` allows (``ValueError``).

    ``shown`` is how the message quotes it. Only the exponent is looked at, never the digits
    written out, so ``1e999999999`` is refused as fast as ``1e41``.
    """
    digits = _current.digits
    if isinstance(number, int):
        if -LARGEST < number < LARGEST:
            return
        raise too_large(shown)
    if not number.is_finite():
        return
    place = number.adjusted()  # the power of ten of the first digit
    if place >= digits:
        raise too_large(shown)
    if place < -digits:
        msg = (
            f"{shown} is too small: a number's first digit may stand at most {digits} places"
            f" after its decimal point ({_DIGITS})"
        )
        raise ValueError(msg)


def too_large(shown: str) -> ValueError:
    """The error for a number with more digits before its decimal point than the limit."""
    msg = (
        f"{shown} is too large: a number may have at most {_current.digits} digits before its"
        f" decimal point ({_DIGITS})"
    )
    return ValueError(msg)


def quote_number(text: str) -> str:
    """A number as a message quotes it: whole when short, else its start and its length."""
    if len(text) <= 24:
        return f"the number {text}"
    return f"the number {text[:12]}… ({len(text):,} characters)"


def check_length(length: int, what: str) -> None:
    """Refuse ``what`` when it would have more than :attr:`Limits.length` characters or items."""
    if length > _current.length:
        msg = (
            f"{what} would have {length:,} characters or items;"
            f" at most {_current.length:,} ({_LENGTH})"
        )
        raise ValueError(msg)


_DIGITS = _VARIABLES["digits"]
_LENGTH = _VARIABLES["length"]
