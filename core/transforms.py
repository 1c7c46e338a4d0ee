"""The built-in transforms: plain functions a recipe calls by name in ``map:`` and ``filter:``.

Every transform takes the piped value as its first positional argument, so ``record.name | upper``
and ``upper(record.name)`` are the same call. Every one lets ``None`` through as ``None`` (a missing
field stays missing) and raises ``ValueError`` or ``TypeError`` with a short message when a value
cannot be converted; the mapping compiler turns those into a ``MappingError`` naming the field.

Money is ``decimal.Decimal``, never ``float``, and exact: no digit is rounded away, however many
there are. Every number a transform builds is bounded by :mod:`core.limits` (``1e999999`` is
refused at once, never converted for half a minute). Plugins add transforms through the
``connector_register_transforms`` hook; :func:`builtin_transforms` is what core registers itself.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from core import limits

Transform = Callable[..., Any]
"""A transform: its first positional argument is the piped (or explicitly passed) value."""

__all__ = [
    "Transform",
    "builtin_transforms",
    "coalesce",
    "default",
    "first_name",
    "format_date",
    "join",
    "last_name",
    "lookup",
    "lower",
    "major_to_minor",
    "minor_to_major",
    "parse_date",
    "round_money",
    "split",
    "strip",
    "title",
    "to_decimal",
    "to_int",
    "to_str",
    "unix_to_date",
    "unix_to_datetime",
    "upper",
]


def _show(value: Any) -> str:
    """A short repr for error messages: enough to recognise the value, never a whole payload."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


# --- money -----------------------------------------------------------------------------------

# Arithmetic that never rounds: the default context keeps 28 digits and would round a larger
# amount silently. Sizes are bounded by core.limits, so exactness costs nothing more.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

# Stripe's list, which is also what most payment platforms mean by "minor units". ISO 4217 gives ISK
# exponent 0, but Stripe (the main source of minor-unit amounts) still sends ISK with two decimals
# (100 = 1 króna; reference/sources.md §1.7), so ISK stays on the default of 2. MGA is the reverse:
# ISO says 2, Stripe says 0, and we follow Stripe.
_ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
    }
    | {"XOF", "XPF"}
)
_THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
# Keyed by both spellings so the hot path (Stripe sends lowercase) skips str.upper().
_EXPONENTS: dict[str, int] = {
    spelling: exponent
    for codes, exponent in ((_ZERO_DECIMAL, 0), (_THREE_DECIMAL, 3))
    for code in codes
    for spelling in (code, code.lower())
}


def currency_exponent(currency: str) -> int:
    """How many decimal places ``currency`` (any case) has in minor units: 0, 2 or 3."""
    exponent = _EXPONENTS.get(currency)
    if exponent is not None:
        return exponent
    # ASCII only: a code is three Latin letters, and the cache below must stay small.
    if (
        currency.__class__ is not str
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
    ):
        msg = f"{_show(currency)} is not a three-letter currency code"
        raise ValueError(msg)
    exponent = _EXPONENTS.get(currency.upper(), 2)
    # Remember every valid code seen (at most 52**3 spellings), so "usd" is one lookup next time.
    _EXPONENTS[currency] = exponent
    return exponent


def _whole_number(value: Any, what: str) -> int:
    """``value`` as an ``int`` if it is a whole number of any numeric type or numeric text."""
    if value.__class__ is int:
        limits.check_number(value, _show(value))
        return int(value)
    if isinstance(value, bool):
        msg = f"{what} must be a whole number, got {_show(value)}"
        raise TypeError(msg)
    number = to_decimal(value)
    if number is None or number != number.to_integral_value():
        msg = f"{what} must be a whole number, got {_show(value)}"
        raise ValueError(msg)
    return int(number)


def minor_to_major(value: Any, currency: str) -> Decimal | None:
    """Convert an amount in minor units (cents) to a ``Decimal`` in major units of ``currency``.

    Uses the currency's exponent: ``minor_to_major(2500, "usd") == Decimal("25.00")``,
    ``minor_to_major(2500, "JPY") == Decimal("2500")``, ``minor_to_major(2500, "kwd") ==
    Decimal("2.500")``. The result always has exactly that many decimal places. A fractional
    amount raises ``ValueError``; ``None`` gives ``None``.
    """
    exponent = _EXPONENTS.get(currency)
    # scaleb keeps every digit and sets the exponent, so 2500 -> 25.00 exactly, with no rounding.
    if (
        exponent is not None
        and value.__class__ is int  # the hot path: Stripe's int + "usd"
        and -limits.LARGEST < value < limits.LARGEST
    ):
        return Decimal(value).scaleb(-exponent, _EXACT)
    if value is None:
        return None
    if currency is None:
        msg = "a currency is needed to convert minor units, got None"
        raise ValueError(msg)
    minor = _whole_number(value, "minor units")
    return Decimal(minor).scaleb(-currency_exponent(currency), _EXACT)


def major_to_minor(value: Any, currency: str) -> int | None:
    """Convert a major-unit amount (``"25.00"``, ``Decimal``, int) to integer minor units.

    ``major_to_minor("25.00", "usd") == 2500``; ``major_to_minor(2500, "jpy") == 2500``. A value
    more precise than the currency allows (``"25.001"`` USD, ``"1.5"`` JPY) raises ``ValueError``
    rather than silently rounding someone's gift.
    """
    if value is None:
        return None
    if currency is None:
        msg = "a currency is needed to convert to minor units, got None"
        raise ValueError(msg)
    exponent = currency_exponent(currency)
    amount = to_decimal(value)
    if amount is None:
        return None
    minor = amount.scaleb(exponent, _EXACT)
    limits.check_number(minor, _show(value))
    if minor != minor.to_integral_value():
        msg = f"{_show(value)} has more decimal places than {currency.upper()} allows ({exponent})"
        raise ValueError(msg)
    return int(minor)


def to_decimal(value: Any) -> Decimal | None:
    """``value`` as a ``Decimal``: from ``Decimal``, ``int``, numeric text, or ``float``.

    A float goes through ``str()`` first so ``0.1`` becomes ``Decimal("0.1")``, not the binary
    expansion. Empty text gives ``None``; NaN, infinities, non-numeric text and numbers over
    :mod:`core.limits` raise ``ValueError``.
    """
    if value is None:
        return None
    if _plain_digits(value):
        return Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        msg = f"expected a number, got {_show(value)}"
        raise TypeError(msg)
    elif isinstance(value, int):
        limits.check_number(value, _show(value))
        return Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            msg = f"{_show(value)} is not a number"
            raise ValueError(msg) from None
    else:
        msg = f"expected a number, got {type(value).__name__} {_show(value)}"
        raise TypeError(msg)
    if not number.is_finite():
        msg = f"{_show(value)} is not a finite number"
        raise ValueError(msg)
    limits.check_number(number, _show(value))
    return number


def to_int(value: Any) -> int | None:
    """``value`` as an ``int``. ``"42"``, ``42.0`` and ``Decimal("42")`` work; ``42.5`` is refused
    with ``ValueError`` rather than truncated. Empty text gives ``None``."""
    # _plain_digits, inlined: the usual number of a CSV file, read twice a record or more
    text = value.__class__ is str and value.isdigit() and value.isascii()
    if text and len(value) <= limits.current().digits:
        return int(value)
    if value is None or value == "":
        return None
    return _whole_number(value, "value")


def _plain_digits(value: Any) -> bool:
    """True for text of ASCII digits within the digit limit, by far the most common number
    in a CSV file: it needs no ``Decimal``, no stripping and no check of its size."""
    return (
        value.__class__ is str
        and value.isdigit()
        and value.isascii()
        and len(value) <= limits.current().digits
    )


def to_str(value: Any) -> str | None:
    """``value`` as text. Decimals are written without exponents (``"100"``, not ``"1E+2"``),
    booleans as ``"true"``/``"false"``, dates in ISO 8601. ``None`` stays ``None``."""
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        limits.check_number(value, _show(value))  # written out, 1e999999 is a million digits
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def round_money(value: Any, places: int | str = 2) -> Decimal | None:
    """Round to ``places`` decimal places as a ``Decimal``, halves away from zero as receipts do.

    ``places`` may be a currency code instead: ``round_money(record.currency)`` gives ``100.00``
    for USD, ``100`` for JPY and ``100.000`` for KWD.
    """
    number = to_decimal(value)
    if number is None:
        return None
    if isinstance(places, str):
        places = currency_exponent(places)
    most = limits.current().digits
    if places.__class__ is not int or not -most <= places <= most:
        msg = (
            f"places must be a currency code or a whole number from -{most} to {most},"
            f" got {_show(places)}"
        )
        raise ValueError(msg)
    step = Decimal(1).scaleb(-places)
    return number.quantize(step, rounding=ROUND_HALF_UP, context=_EXACT)


# --- dates -----------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
# D/M/YYYY or M/D/YYYY, with the same separator twice, and any time of day after it.
_NUMERIC_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?:[ T].*)?")
# Dates repeat constantly in a sync (every gift on one day shares it), and this cache turns the
# date arithmetic into one dict lookup. It is cleared when it grows, so memory stays bounded.
_DAY_TEXT: dict[int, str] = {}


def _timestamp(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        msg = f"expected a unix timestamp, got {type(value).__name__} {_show(value)}"
        raise TypeError(msg)
    if isinstance(value, int | float):
        return value
    number = to_decimal(value)
    if number is None:
        msg = "expected a unix timestamp, got empty text"
        raise ValueError(msg)
    return int(number) if number == number.to_integral_value() else float(number)


def unix_to_date(ts: Any) -> str | None:
    """Unix seconds to a UTC calendar date: ``unix_to_date(1735689600) == "2025-01-01"``."""
    if ts is None:
        return None
    day = ts // 86400 if ts.__class__ is int else int(_timestamp(ts) // 86400)
    text = _DAY_TEXT.get(day)
    if text is None:
        try:
            text = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        except (ValueError, OverflowError):
            msg = f"{_show(ts)} is out of range for a unix timestamp"
            raise ValueError(msg) from None
        if len(_DAY_TEXT) > 100_000:
            _DAY_TEXT.clear()
        _DAY_TEXT[day] = text
    return text


def unix_to_datetime(ts: Any) -> str | None:
    """Unix seconds to ISO 8601 in UTC: ``unix_to_datetime(0) == "1970-01-01T00:00:00Z"``.

    Fractional seconds are kept (as microseconds) only when present.
    """
    if ts is None:
        return None
    seconds = _timestamp(ts)
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        msg = f"{_show(ts)} is out of range for a unix timestamp"
        raise ValueError(msg) from None
    spec = "seconds" if moment.microsecond == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _parse_moment(
    value: Any, fmt: str | None, day_first: bool | None, order: DateOrder | None = None
) -> datetime | None:
    """Read what ``parse_date`` accepts into a ``datetime`` (naive unless an offset was given)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = _timestamp(value)
        return (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None)
    if not isinstance(value, str):
        msg = f"expected a date, got {type(value).__name__} {_show(value)}"
        raise TypeError(msg)
    text = value.strip()
    if not text:
        return None
    if fmt is not None:
        return datetime.strptime(text, fmt)
    if text.isdigit() and len(text) != 8:  # eight digits is ISO basic form, YYYYMMDD
        return (_EPOCH + timedelta(seconds=int(text))).replace(tzinfo=None)
    numeric = _NUMERIC_DATE.fullmatch(text)
    if numeric:
        first, second, year = (int(numeric.group(n)) for n in (1, 3, 4))
        order = order or DateOrder()
        return order.read(value, first, second, year, day_first)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        msg = (
            f"cannot read {_show(value)} as a date; expected ISO 8601, D/M/YYYY or M/D/YYYY, or"
            " unix seconds (or pass a format, e.g. parse_date('%d.%m.%Y'))"
        )
        raise ValueError(msg) from None


class DateOrder:
    """Whether a run's dates such as ``01/02/2025`` put the day or the month first.

    Such a date reads two ways, so it is never guessed: the recipe says ``day_first`` (the
    transform's argument, or the recipe's ``day_first:``), gives a format, or a date earlier in
    the same run that reads only one way (``15/01/2025``) settled the order for the rest. A date
    that contradicts a settled order is refused. The mapping compiler gives each compiled mapping
    (each run) its own.
    """

    def __init__(self, declared: bool | None = None) -> None:
        #: The order the recipe says (its ``day_first:``), obeyed like a transform's argument.
        self.declared = declared
        self.day_first: bool | None = None
        self.settled_by: str | None = None

    def read(
        self, value: str, first: int, second: int, year: int, day_first: bool | None
    ) -> datetime:
        day_first = self.declared if day_first is None else day_first
        if day_first is None and first != second and first <= 12 and second <= 12:
            if self.day_first is None:
                raise ValueError(_two_ways(value, first, second))
            day_first = self.day_first
        only = day_first if day_first is not None else (first > 12 if first != second else None)
        settled = self.day_first
        if day_first is None and only is not None and settled is not None and only != settled:
            msg = (
                f"{_show(value)} reads only {_ORDER[bool(only)]}, but {self.settled_by!r} earlier"
                f" in this run reads only {_ORDER[settled]}; give the format, e.g."
                f" parse_date('{'%d/%m/%Y' if only else '%m/%d/%Y'}')"
            )
            raise ValueError(msg)
        day, month = (first, second) if only else (second, first)
        try:
            moment = datetime(year, month, day)
        except ValueError as error:
            msg = f"{_show(value)} is not a date read {_ORDER[bool(only)]}: {error}"
            raise ValueError(msg) from None
        if self.day_first is None and only is not None and day_first is None:
            self.day_first, self.settled_by = only, value.strip()
        return moment

    def parse_date(
        self, value: Any, fmt: str | None = None, day_first: bool | None = None
    ) -> str | None:
        """:func:`parse_date`, remembering the order this run's dates settled."""
        moment = _parse_moment(value, fmt, day_first, self)
        return None if moment is None else moment.date().isoformat()

    def format_date(
        self, value: Any, fmt: str, parse_fmt: str | None = None, day_first: bool | None = None
    ) -> str | None:
        """:func:`format_date`, remembering the order this run's dates settled."""
        moment = _parse_moment(value, parse_fmt, day_first, self)
        return None if moment is None else moment.strftime(fmt)

    def for_run(self, transform: Transform) -> Transform:
        """``transform`` as one run uses it: the date readers share this memory."""
        if transform is parse_date:
            return self.parse_date
        if transform is format_date:
            return self.format_date
        return transform


_ORDER = {True: "day first (D/M/YYYY)", False: "month first (M/D/YYYY)"}


def _two_ways(value: str, first: int, second: int) -> str:
    months = calendar.month_name
    return (
        f"{_show(value)} reads two ways ({first} {months[second]} or {months[first]}"
        f" {second}); say which: parse_date(day_first=True) for D/M/YYYY,"
        " parse_date(day_first=False) for M/D/YYYY (or `day_first: true` in the recipe, for"
        " all its dates), or a format such as parse_date('%d/%m/%Y')"
    )


def parse_date(value: Any, fmt: str | None = None, day_first: bool | None = None) -> str | None:
    """Read a date in any common form and write it as ``YYYY-MM-DD``.

    Accepts ISO 8601 dates and datetimes (``Z`` or an offset), ``D/M/YYYY`` and ``M/D/YYYY``
    (also with ``.`` or ``-``), unix seconds (int or digit text) and ``date``/``datetime``
    objects; with ``fmt``, exactly that ``strptime`` format. A date that reads two ways
    (``01/02/2025``) is refused unless ``day_first`` says which order the file uses; in a recipe,
    a date of the same run that reads one way only (``15/01/2025``) settles it for the rest, and
    ``day_first:`` at a recipe's top says it for all its dates. A datetime keeps the calendar date
    it was written in: ``2025-01-01T23:30:00-05:00`` is ``2025-01-01``, the day the donor saw.
    Empty text gives ``None``.
    """
    moment = _parse_moment(value, fmt, day_first)
    return None if moment is None else moment.date().isoformat()


def format_date(
    value: Any, fmt: str, parse_fmt: str | None = None, day_first: bool | None = None
) -> str | None:
    """Read a date as :func:`parse_date` does (``parse_fmt`` is its ``fmt``), then write it with
    ``strftime(fmt)``: ``format_date("2025-01-31", "%m/%d/%Y") == "01/31/2025"``."""
    moment = _parse_moment(value, parse_fmt, day_first)
    return None if moment is None else moment.strftime(fmt)


# --- text ------------------------------------------------------------------------------------


def _text(value: Any, transform: str) -> str:
    if isinstance(value, str):
        return value
    msg = f"{transform} expects text, got {type(value).__name__} {_show(value)} (try to_str first)"
    raise TypeError(msg)


def upper(value: Any) -> str | None:
    """Upper-case text; ``None`` stays ``None``."""
    if value.__class__ is str:
        return value.upper()
    return None if value is None else _text(value, "upper").upper()


def lower(value: Any) -> str | None:
    """Lower-case text; ``None`` stays ``None``."""
    if value.__class__ is str:
        return value.lower()
    return None if value is None else _text(value, "lower").lower()


def strip(value: Any) -> str | None:
    """Text without leading and trailing whitespace; ``None`` stays ``None``."""
    if value.__class__ is str:
        return value.strip()
    return None if value is None else _text(value, "strip").strip()


_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def _capitalise(match: re.Match[str]) -> str:
    word = match.group(0)
    head, apostrophe, rest = word.partition("'")
    # O'Neil and D'Angelo, but Ada's: only a one-letter stem before the apostrophe is a prefix.
    if apostrophe and len(head) == 1:
        return f"{head.upper()}'{rest.capitalize()}"
    return word.capitalize()


def title(value: Any) -> str | None:
    """Capitalise each word: ``"mary-jane o'neil"`` -> ``"Mary-Jane O'Neil"``.

    Unlike ``str.title`` it leaves ``"ada's"`` as ``"Ada's"``, not ``"Ada'S"``.
    """
    return None if value is None else _WORD.sub(_capitalise, _text(value, "title"))


# --- names -----------------------------------------------------------------------------------


def _bare(token: str) -> str:
    return token.lower().replace(".", "").replace(",", "")


# Compared after lower-casing and dropping dots and commas, so "Dr." and "Jr.," match.
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "miss", "mx", "rev", "fr", "prof", "hon", "sir"})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "dds", "jd", "cpa"})
_JOINERS = frozenset({"and", "&"})
_PARTICLES = frozenset(
    {"de", "da", "del", "della", "dei", "degli", "di", "du", "dos", "das", "des", "van", "von"}
    | {"der", "den", "ter", "ten", "la", "le", "st"}
)


# Names up to this long are cached (first_name and last_name both ask); a longer one is split
# each time, so the cache's 8192 names stay small whatever the input holds.
_CACHED_NAME = 200


def _split_name(full: str) -> tuple[str | None, str | None]:
    """``(first, last)`` of a person's name."""
    if len(full) <= _CACHED_NAME:
        return _split_short_name(full)
    return _split_any_name(full)


def _split_any_name(full: str) -> tuple[str | None, str | None]:
    if "," not in full:
        words = full.split()
        # Most names are two plain words; settle those without the general rules.
        if len(words) == 2 and "." not in full and words[0].lower() not in _TITLES:
            last = words[1]
            if last.lower() not in _SUFFIXES:
                return words[0], last
        return _split_words(words)
    parts = [part.split() for part in full.split(",")]
    # "King, Martin Luther, Jr." and "Martin Luther King, Jr.": a part that is only suffixes goes.
    parts = [p for p in parts if p and not all(_bare(word) in _SUFFIXES for word in p)]
    if len(parts) == 1:
        return _split_words(parts[0])
    if not parts:
        return None, None
    # "Lovelace, Ada": the family name comes first.
    family = parts[0]
    given = [word for word in parts[1] if _bare(word) not in _TITLES]
    while len(family) > 1 and _bare(family[-1]) in _SUFFIXES:
        family.pop()
    return given[0] if given else None, " ".join(family)


_split_short_name = lru_cache(maxsize=8192)(_split_any_name)


def _split_words(words: list[str]) -> tuple[str | None, str | None]:
    """``(first, last)`` of a name written given-name first, already split into words."""
    keys = [word.lower().replace(".", "").replace(",", "") for word in words]
    start, end = 0, len(words)
    # "Mr. and Mrs. John Smith": titles joined by "and" or "&" all go.
    while end - start > 1 and (
        keys[start] in _TITLES or (start and keys[start] in _JOINERS and keys[start - 1] in _TITLES)
    ):
        start += 1
    while end - start > 1 and keys[end - 1] in _SUFFIXES:
        end -= 1
    if end - start == 0:
        return None, None
    if end - start == 1:
        # "Mr. Smith" names the family; a lone "Cher" is what the person goes by.
        return (None, words[start]) if start else (words[start], None)
    # The surname starts at the first particle after the first name ("Ludwig van Beethoven",
    # "Juan de la Cruz"); without one it is the last word, so middle names drop out.
    for index in range(start + 1, end - 1):
        if keys[index] in _PARTICLES:
            return words[start], " ".join(words[index:end])
    return words[start], words[end - 1]


def first_name(full: Any) -> str | None:
    """The given name from a full name.

    Drops titles (Dr, Mr, Mrs, Ms, Rev, ...) and suffixes (Jr, Sr, II, III, IV, PhD, MD, Esq, with
    or without dots and commas), reads ``"Lovelace, Ada"`` as family-name-first, and ignores middle
    names: ``"Dr. Ada King Lovelace"`` -> ``"Ada"``. A single name is a first name (``"Cher"``),
    unless a title says it is a family name (``"Mr. Smith"`` gives ``None``). ``None`` and blank
    text give ``None``.
    """
    if full.__class__ is str and len(full) <= _CACHED_NAME:
        return _split_short_name(full)[0]
    return None if full is None else _split_name(_text(full, "first_name"))[0]


def last_name(full: Any) -> str | None:
    """The family name from a full name, with its particles: ``"Ludwig van Beethoven"`` ->
    ``"van Beethoven"``, ``"Martin Luther King Jr."`` -> ``"King"``, ``"Lovelace, Ada"`` ->
    ``"Lovelace"``.

    A single name (``"Cher"``) has no family name and gives ``None``, so a sink that needs one can
    say so (or the recipe can write ``record.name | last_name | default('Unknown')``); after a
    title it is the family name (``"Mr. Smith"`` -> ``"Smith"``).
    """
    if full.__class__ is str and len(full) <= _CACHED_NAME:
        return _split_short_name(full)[1]
    return None if full is None else _split_name(_text(full, "last_name"))[1]


# --- values ----------------------------------------------------------------------------------


def default(value: Any, fallback: Any) -> Any:
    """``fallback`` when ``value`` is ``None`` or empty text, else ``value``."""
    return fallback if value is None or value == "" else value


def coalesce(*values: Any) -> Any:
    """The first value that is neither ``None`` nor empty text, else ``None``."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def join(values: Any, sep: str = " ") -> str | None:
    """Join the non-empty values with ``sep``: ``join(["Ada", None, "Lovelace"])`` is
    ``"Ada Lovelace"``.

    Non-text values are written with :func:`to_str`. Nothing left to join gives ``None``.
    """
    if values is None:
        return None
    if isinstance(values, str):
        return values or None
    if not isinstance(values, Iterable) or isinstance(values, Mapping):
        msg = f"join expects a list, got {type(values).__name__} {_show(values)}"
        raise TypeError(msg)
    texts = [to_str(value) for value in values if value is not None and value != ""]
    return sep.join(t for t in texts if t) or None


def split(value: Any, sep: str = ",") -> list[str] | None:
    """Split text on ``sep`` into stripped, non-empty parts: ``"a, ,b"`` -> ``['a', 'b']``."""
    if value is None:
        return None
    return [part for part in (p.strip() for p in _text(value, "split").split(sep)) if part]


def lookup(value: Any, table: Mapping[Any, Any], default: Any = None) -> Any:
    """Look ``value`` up in one of the recipe's tables (``tables:``); ``default`` if it is absent.

    In a recipe the table is named, ``record.fund | lookup('funds')``; the compiler checks the name
    and passes the table itself.
    """
    return table.get(value, default)


def builtin_transforms() -> dict[str, Transform]:
    """Every built-in transform by the name recipes use; a new dict each call."""
    return {
        "coalesce": coalesce,
        "default": default,
        "first_name": first_name,
        "format_date": format_date,
        "join": join,
        "last_name": last_name,
        "lookup": lookup,
        "lower": lower,
        "major_to_minor": major_to_minor,
        "minor_to_major": minor_to_major,
        "parse_date": parse_date,
        "round_money": round_money,
        "split": split,
        "strip": strip,
        "title": title,
        "to_decimal": to_decimal,
        "to_int": to_int,
        "to_str": to_str,
        "unix_to_date": unix_to_date,
        "unix_to_datetime": unix_to_datetime,
        "upper": upper,
    }
