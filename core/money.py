"""``parse_money``: amounts as people write them (``$40.50``, ``1.234,50 €``, ``(12.00)``) to an
exact ``Decimal``.

Which mark is the decimal point is never guessed: ``1.234`` is a thousand and more in Germany and
one and a bit in the United States. The recipe says which it reads, by an example of the format
(``"1.234,56"``) or by a locale (``"de_DE"``); the default is ``"1,234.56"``. A text that does not
read in that format is refused with a ``ValueError`` that says what was expected.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any, NamedTuple

from core import limits
from core.transforms import to_decimal

__all__ = ["DEFAULT_FORMAT", "LOCALES", "parse_money"]

DEFAULT_FORMAT = "1,234.56"
_SPACES = " \u00a0\u202f"
_MINUS = "-\u2212"

#: Locales by language (or language_TERRITORY where a territory differs), as format examples.
LOCALES: dict[str, str] = {
    **dict.fromkeys(("en", "ja", "ko", "zh", "he", "th", "hi", "ms", "fil"), "1,234.56"),
    **dict.fromkeys(("en_ZA",), "1 234,56"),
    **dict.fromkeys(("de", "es", "it", "nl", "pt", "da", "id", "tr", "el", "ro"), "1.234,56"),
    **dict.fromkeys(("fr", "sv", "nb", "no", "fi", "pl", "cs", "sk", "ru", "uk", "hu"), "1 234,56"),
    **dict.fromkeys(("de_CH", "it_CH", "fr_CH", "de_LI"), "1'234.56"),
    **dict.fromkeys(("es_MX", "es_US"), "1,234.56"),
    **dict.fromkeys(("pt_PT",), "1 234,56"),
}


class _Format(NamedTuple):
    example: str
    group: str  # "" when the format has no grouping
    decimal: str


def _format(spec: str | None) -> _Format:
    """The separators of a format example (``"1.234,56"``) or a locale (``"de_DE"``, ``"de"``)."""
    text = (spec or DEFAULT_FORMAT).strip()
    locale = text.replace("-", "_").split(".")[0]
    language = locale.split("_")[0].lower()
    territory = f"{language}_{locale.split('_')[1].upper()}" if "_" in locale else None
    example = LOCALES.get(territory or "", LOCALES.get(language, text))
    found = re.fullmatch(r"1([,.' \u00a0\u202f]?)234([.,])56", example)
    if found is None or found.group(1) == found.group(2):
        msg = (
            f"unknown money format {text!r}: give an example such as '1,234.56', '1.234,56',"
            f" '1 234,56' or '1234.56', or a locale such as en_US, de_DE, fr_FR, de_CH"
        )
        raise ValueError(msg)
    group = " " if found.group(1) in _SPACES and found.group(1) else found.group(1)
    return _Format(example, group, found.group(2))


def parse_money(value: Any, fmt: str | None = None) -> Decimal | None:
    """An amount written for people, as an exact ``Decimal``: ``parse_money("$40.50")``.

    ``fmt`` is how the amounts are written, as an example (``"1.234,56"``, ``"1 234,56"``,
    ``"1'234.56"``) or a locale (``"de_DE"``, ``"fr"``); default ``"1,234.56"``.
    ``parse_money("1.234,50 €", "1.234,56") == Decimal("1234.50")``. A currency symbol or code
    before or after the number is left out (read the currency from its own field); ``(12.00)``,
    ``-12.00`` and ``12.00-`` are negative. Numbers pass through as ``to_decimal`` reads them;
    empty text gives ``None``. Anything else raises ``ValueError`` saying what was expected.
    """
    if value is None or isinstance(value, int | float | Decimal):
        return to_decimal(value)
    if not isinstance(value, str):
        msg = f"expected text or a number, got {type(value).__name__}"
        raise TypeError(msg)
    written = _format(fmt)
    text = value.strip(_SPACES + "\t")
    if not text:
        return None
    negative, text = _sign(text)
    found = re.search(r"\d[\d.,' \u00a0\u202f]*", text)
    if found is None or not _is_currency(text[: found.start()] + text[found.end() :]):
        msg = f"{value!r} is not an amount (expected a number written like {written.example})"
        raise ValueError(msg)
    number = _number(found.group().rstrip(_SPACES), written, value)
    limits.check_number(number, repr(value))
    return -number if negative else number


def _sign(text: str) -> tuple[bool, str]:
    if text.startswith("(") and text.endswith(")"):
        return True, text[1:-1].strip(_SPACES)
    for minus in _MINUS:
        if text.startswith(minus):
            return True, text[1:].strip(_SPACES)
        if text.endswith(minus):
            return True, text[:-1].strip(_SPACES)
        # "$-12.00", "-$12.00": the sign next to the number, after a symbol
        if minus in text and text.count(minus) == 1:
            before, _, after = text.partition(minus)
            if not any(c.isdigit() for c in before):
                return True, (before + after).strip(_SPACES)
    return False, text


def _is_currency(rest: str) -> bool:
    """Whether what surrounds the number is at most a currency symbol and a code (``US$``,
    ``EUR``, ``kr``, ``R$``)."""
    marks = rest.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    letters = sum(c.isalpha() for c in marks)
    symbols = sum(unicodedata.category(c) == "Sc" for c in marks)
    return letters + symbols == len(marks) and letters <= 3 and symbols <= 1


def _number(digits: str, written: _Format, value: str) -> Decimal:
    number = _read(digits, written)
    if number is not None:
        return number
    swapped = _format("1.234,56" if written.decimal == "." else "1,234.56")
    hint = ""
    if _read(digits, swapped) is not None:
        hint = f"; if it is written like {swapped.example}, give that format"
    msg = f"{value!r} is not written like {written.example}{hint}"
    raise ValueError(msg)


def _read(digits: str, written: _Format) -> Decimal | None:
    """The number ``digits`` is in ``written``'s format; None when it is not in that format."""
    whole, point, fraction = digits.partition(written.decimal)
    if written.group == " ":
        whole = whole.replace("\u00a0", " ").replace("\u202f", " ")
    parts = whole.split(written.group) if written.group else [whole]
    grouped = len(parts) == 1 or (
        1 <= len(parts[0]) <= 3 and all(len(part) == 3 for part in parts[1:])
    )
    if not (grouped and all(p.isdigit() for p in parts)) or (point and not fraction.isdigit()):
        return None
    return Decimal("".join(parts) + (f".{fraction}" if point else ""))
