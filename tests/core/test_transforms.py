from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core import limits
from core import transforms as t
from core.errors import MappingError
from core.mapping import compile_mapping
from core.transforms import builtin_transforms

# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [
        (2500, "usd", "25.00"),
        (2500, "USD", "25.00"),
        (5, "usd", "0.05"),
        (0, "usd", "0.00"),
        (-1999, "usd", "-19.99"),
        (2500, "jpy", "2500"),
        (2500, "JPY", "2500"),
        (2500, "kwd", "2.500"),
        (1234, "BHD", "1.234"),
        (2500, "isk", "25.00"),  # Stripe still sends ISK with two decimals
        (2500, "mga", "2500"),
        (2500, "eur", "25.00"),
        ("2500", "usd", "25.00"),
        (2500.0, "usd", "25.00"),
        (Decimal(2500), "Usd", "25.00"),
    ],
)
def test_minor_to_major(minor: Any, currency: str, major: str) -> None:
    result = t.minor_to_major(minor, currency)
    assert isinstance(result, Decimal)
    # str() shows the exponent too: Decimal("25.00") and Decimal("25") compare equal.
    assert str(result) == major


@pytest.mark.parametrize("bad", [12.5, "12.5", "abc", Decimal("0.1")])
def test_minor_to_major_refuses_fractions(bad: Any) -> None:
    with pytest.raises(ValueError, match="minor units must be a whole number|not a number"):
        t.minor_to_major(bad, "usd")


@pytest.mark.parametrize(
    ("args", "error"),
    [((True, "usd"), TypeError), ((100, None), ValueError), ((100, "dollars"), ValueError)],
)
def test_minor_to_major_refuses_bad_input(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        t.minor_to_major(*args)


def test_minor_to_major_passes_none() -> None:
    assert t.minor_to_major(None, "usd") is None


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [
        ("25.00", "usd", 2500),
        (Decimal("25"), "USD", 2500),
        (25, "usd", 2500),
        ("0.1", "usd", 10),
        (0.1, "usd", 10),
        ("2500", "jpy", 2500),
        ("2.5", "kwd", 2500),
        ("1.234", "KWD", 1234),
        ("25.000", "usd", 2500),  # trailing zeros are not extra precision
    ],
)
def test_major_to_minor(major: Any, currency: str, minor: int) -> None:
    result = t.major_to_minor(major, currency)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("major", "currency"), [("25.001", "usd"), ("1.5", "jpy"), ("0.0001", "kwd")]
)
def test_major_to_minor_refuses_extra_precision(major: str, currency: str) -> None:
    with pytest.raises(ValueError, match="more decimal places than"):
        t.major_to_minor(major, currency)


@pytest.mark.parametrize("currency", ["usd", "jpy", "kwd"])
def test_money_round_trips(currency: str) -> None:
    for minor in (0, 1, 99, 2500, 123456789):
        assert t.major_to_minor(t.minor_to_major(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.30", Decimal("12.30")),
        (" 7 ", Decimal(7)),
        (3, Decimal(3)),
        (0.1, Decimal("0.1")),  # not 0.1000000000000000055511151231257827...
        (Decimal("1.5"), Decimal("1.5")),
        ("", None),
        (None, None),
    ],
)
def test_to_decimal(value: Any, expected: Decimal | None) -> None:
    assert t.to_decimal(value) == expected
    if expected is not None:
        assert str(t.to_decimal(value)) == str(expected)


@pytest.mark.parametrize(
    ("value", "error"),
    [("abc", ValueError), ("NaN", ValueError), (float("inf"), ValueError), (True, TypeError)],
)
def test_to_decimal_refuses(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        t.to_decimal(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (42.0, 42),
        (Decimal("42.00"), 42),
        (" -3 ", -3),
        (7, 7),
        ("", None),
        (None, None),
    ],
)
def test_to_int(value: Any, expected: int | None) -> None:
    assert t.to_int(value) == expected


@pytest.mark.parametrize("value", [42.5, "4.2", "x"])
def test_to_int_refuses_to_truncate(value: Any) -> None:
    with pytest.raises(ValueError, match="whole number|not a number"):
        t.to_int(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", "a"),
        (12, "12"),
        (Decimal("1E+2"), "100"),
        (Decimal("25.00"), "25.00"),
        (True, "true"),
        (False, "false"),
        (None, None),
    ],
)
def test_to_str(value: Any, expected: str | None) -> None:
    assert t.to_str(value) == expected


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        ("2.345", 2, "2.35"),
        ("2.344", 2, "2.34"),
        ("-2.345", 2, "-2.35"),
        (10, 2, "10.00"),
        ("2.5", 0, "3"),
        (100.0, "usd", "100.00"),
        ("1500.4", "JPY", "1500"),
        ("12.3456", "KWD", "12.346"),
    ],
)
def test_round_money(value: Any, places: int | str, expected: str) -> None:
    assert str(t.round_money(value, places)) == expected


def test_round_money_passes_none() -> None:
    assert t.round_money(None) is None


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1735689600, "2025-01-01"),
        (1735689599, "2024-12-31"),
        (0, "1970-01-01"),
        (1735689600.9, "2025-01-01"),
        ("1735689600", "2025-01-01"),
        (None, None),
    ],
)
def test_unix_to_date(ts: Any, expected: str | None) -> None:
    assert t.unix_to_date(ts) == expected


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1735689600, "2025-01-01T00:00:00Z"),
        (0, "1970-01-01T00:00:00Z"),
        (1.5, "1970-01-01T00:00:01.500000Z"),
        (None, None),
    ],
)
def test_unix_to_datetime(ts: Any, expected: str | None) -> None:
    assert t.unix_to_datetime(ts) == expected


@pytest.mark.parametrize("ts", [True, "soon", [1]])
def test_unix_timestamps_refuse_non_numbers(ts: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        t.unix_to_date(ts)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-31", "2025-01-31"),
        ("2025-01-31T10:00:00Z", "2025-01-31"),
        ("2025-01-31T23:30:00-05:00", "2025-01-31"),  # the date as written, not shifted to UTC
        ("2025-01-31T10:00:00.123+02:00", "2025-01-31"),
        ("12/25/2024", "2024-12-25"),
        ("25/12/2024", "2024-12-25"),
        ("25.12.2024", "2024-12-25"),
        ("5/5/2025", "2025-05-05"),  # the same either way
        ("20250131", "2025-01-31"),
        (1735689600, "2025-01-01"),
        ("1735689600", "2025-01-01"),
        ("  2025-01-31 ", "2025-01-31"),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: Any, expected: str | None) -> None:
    assert t.parse_date(value) == expected


@pytest.mark.parametrize("value", ["01/02/2025", "1/2/2025", "01.02.2025", "01-02-2025 10:00"])
def test_a_date_that_reads_two_ways_is_refused_saying_what_to_add(value: str) -> None:
    with pytest.raises(ValueError, match="reads two ways") as caught:
        t.parse_date(value)
    assert repr(value) in str(caught.value)
    assert "(1 February or January 2)" in str(caught.value)
    assert "parse_date(day_first=True)" in str(caught.value)
    assert t.parse_date(value, day_first=True) == "2025-02-01"
    assert t.parse_date(value, day_first=False) == "2025-01-02"
    assert t.format_date(value, "%d %b", day_first=True) == "01 Feb"


def test_day_first_is_obeyed_even_when_the_date_says_otherwise() -> None:
    with pytest.raises(ValueError, match="month must be in 1..12"):
        t.parse_date("01/13/2025", day_first=True)


def test_the_recipes_day_first_reads_every_date_and_an_argument_wins() -> None:
    block = {"a": "record.d | parse_date", "b": "record.d | parse_date(day_first=False)"}
    mapping = compile_mapping(block, transforms=t.builtin_transforms(), day_first=True)
    assert mapping({"d": "01/02/2025"}) == {"a": "2025-02-01", "b": "2025-01-02"}


def test_a_runs_first_date_that_reads_one_way_settles_the_order() -> None:
    mapping = compile_mapping({"day": "record.d | parse_date"}, transforms=t.builtin_transforms())
    with pytest.raises(MappingError, match="reads two ways") as caught:
        mapping({"d": "01/02/2025"})  # nothing settled yet: refused, never guessed
    assert caught.value.field == "day"
    assert mapping({"d": "15/01/2025"}) == {"day": "2025-01-15"}
    assert mapping({"d": "01/02/2025"}) == {"day": "2025-02-01"}
    with pytest.raises(MappingError, match="'15/01/2025' earlier in this run reads only day"):
        mapping({"d": "01/13/2025"})
    fresh = compile_mapping({"day": "record.d | parse_date"}, transforms=t.builtin_transforms())
    with pytest.raises(MappingError, match="reads two ways"):
        fresh({"d": "01/02/2025"})  # another run (another mapping) remembers nothing


def test_parse_date_with_a_format() -> None:
    assert t.parse_date("31.01.2025", "%d.%m.%Y") == "2025-01-31"


@pytest.mark.parametrize("value", ["next tuesday", "13/45/2025", "2025-02-30", "13/13/2025"])
def test_parse_date_refuses_nonsense(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the form tried
        t.parse_date(value)


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2025-01-31", "%m/%d/%Y", "01/31/2025"),
        ("2025-01-31T10:05:00Z", "%Y-%m-%d %H:%M", "2025-01-31 10:05"),
        (1735689600, "%d %b %Y", "01 Jan 2025"),
        (None, "%Y", None),
    ],
)
def test_format_date(value: Any, fmt: str, expected: str | None) -> None:
    assert t.format_date(value, fmt) == expected


def test_format_date_with_an_input_format() -> None:
    assert t.format_date("31.01.2025", "%Y/%m/%d", "%d.%m.%Y") == "2025/01/31"


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        (t.upper, "usd", "USD"),
        (t.lower, "Ada@Example.ORG", "ada@example.org"),
        (t.strip, "  ada \n", "ada"),
        (t.title, "mary-jane o'neil", "Mary-Jane O'Neil"),
        (t.title, "ADA'S FUND", "Ada's Fund"),
        (t.upper, None, None),
        (t.lower, None, None),
        (t.strip, None, None),
        (t.title, None, None),
    ],
)
def test_text_transforms(transform: Any, value: str | None, expected: str | None) -> None:
    assert transform(value) == expected


@pytest.mark.parametrize("transform", [t.upper, t.lower, t.strip, t.title])
def test_text_transforms_refuse_non_text(transform: Any) -> None:
    with pytest.raises(TypeError, match="expects text"):
        transform(42)


# --- names -----------------------------------------------------------------------------------

NAMES = [
    # full name, first, last
    ("Ada Lovelace", "Ada", "Lovelace"),
    ("Ada King Lovelace", "Ada", "Lovelace"),
    ("Ada B. Lovelace", "Ada", "Lovelace"),
    ("  Ada   Lovelace  ", "Ada", "Lovelace"),
    ("Martin Luther King Jr.", "Martin", "King"),
    ("Martin Luther King, Jr.", "Martin", "King"),
    ("Martin Luther King Jr", "Martin", "King"),
    ("John Smith III", "John", "Smith"),
    ("John Smith, PhD", "John", "Smith"),
    ("John Smith Jr., Esq.", "John", "Smith"),
    ("Jane Doe M.D.", "Jane", "Doe"),
    ("Henry Ford II", "Henry", "Ford"),
    ("Dr. Ada Lovelace", "Ada", "Lovelace"),
    ("Mrs Grace Hopper", "Grace", "Hopper"),
    ("Rev. Dr. Martin Luther King Jr.", "Martin", "King"),
    ("Ms. Radia Perlman", "Radia", "Perlman"),
    ("Mr. Smith", None, "Smith"),
    ("Lovelace, Ada", "Ada", "Lovelace"),
    ("Lovelace, Ada King", "Ada", "Lovelace"),
    ("King, Martin Luther, Jr.", "Martin", "King"),
    ("King Jr., Martin Luther", "Martin", "King"),
    ("Lovelace, Dr. Ada", "Ada", "Lovelace"),
    ("van Beethoven, Ludwig", "Ludwig", "van Beethoven"),
    ("Ludwig van Beethoven", "Ludwig", "van Beethoven"),
    ("Johann Sebastian van Beethoven", "Johann", "van Beethoven"),
    ("Juan de la Cruz", "Juan", "de la Cruz"),
    ("Leonardo da Vinci", "Leonardo", "da Vinci"),
    ("Otto von Bismarck", "Otto", "von Bismarck"),
    ("Mary St. John", "Mary", "St. John"),
    ("Van Morrison", "Van", "Morrison"),  # a particle as the first name is a first name
    ("Cher", "Cher", None),
    ("Mr. and Mrs. John Smith", "John", "Smith"),
    ("Mr & Mrs John Smith", "John", "Smith"),
    ("John and Jane Smith", "John", "Smith"),
    ("", None, None),
    ("   ", None, None),
    (None, None, None),
]


@pytest.mark.parametrize(("full", "first", "last"), NAMES, ids=[repr(n[0]) for n in NAMES])
def test_names(full: str | None, first: str | None, last: str | None) -> None:
    assert (t.first_name(full), t.last_name(full)) == (first, last)


def test_names_refuse_non_text() -> None:
    with pytest.raises(TypeError):
        t.first_name(42)


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "x"), ("", "x"), ("a", "a"), (0, 0), (False, False)]
)
def test_default(value: Any, expected: Any) -> None:
    assert t.default(value, "x") == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [((None, "", "a", "b"), "a"), ((None, 0), 0), ((None, ""), None), ((), None)],
)
def test_coalesce(values: tuple[Any, ...], expected: Any) -> None:
    assert t.coalesce(*values) == expected


@pytest.mark.parametrize(
    ("values", "sep", "expected"),
    [
        (["Ada", None, "", "Lovelace"], " ", "Ada Lovelace"),
        (["a", 1, Decimal("2.50")], ", ", "a, 1, 2.50"),
        ([None, ""], " ", None),
        ("already text", " ", "already text"),
        (None, " ", None),
    ],
)
def test_join(values: Any, sep: str, expected: str | None) -> None:
    assert t.join(values, sep) == expected


def test_join_refuses_a_mapping() -> None:
    with pytest.raises(TypeError):
        t.join({"a": 1})


@pytest.mark.parametrize(
    ("value", "sep", "expected"),
    [
        ("a, b,,c ", ",", ["a", "b", "c"]),
        ("x;y", ";", ["x", "y"]),
        ("", ",", []),
        (None, ",", None),
    ],
)
def test_split(value: str | None, sep: str, expected: list[str] | None) -> None:
    assert t.split(value, sep) == expected


def test_lookup() -> None:
    table = {"general": "GEN", "building": "BLD"}
    assert t.lookup("general", table) == "GEN"
    assert t.lookup("missing", table) is None
    assert t.lookup("missing", table, "OTHER") == "OTHER"


# --- bounded values (core.limits) -------------------------------------------------------------


@pytest.fixture
def limits_of() -> Iterator[Callable[..., None]]:
    """Put other limits in force for one test; the defaults come back after it."""
    yield lambda **values: limits.configure(limits.Limits(**values))
    limits.configure(limits.Limits())


HUGE = {
    "1e999999": "1e999999",
    "1e9999999": "1e9999999",
    "Decimal 1e999999": Decimal("1e999999"),
    "int of 5000 digits": 10**5000,
    "text of 5000 digits": "9" * 5000,
    "1e-999999": "1e-999999",
}


@pytest.mark.parametrize("value", HUGE.values(), ids=HUGE.keys())
@pytest.mark.parametrize(
    "convert",
    [
        t.to_int,
        t.to_decimal,
        t.to_str,
        lambda v: t.minor_to_major(v, "usd"),
        lambda v: t.major_to_minor(v, "usd"),
        lambda v: t.round_money(v, "usd"),
        t.unix_to_date,
        t.unix_to_datetime,
    ],
    ids=[
        "to_int", "to_decimal", "to_str", "minor_to_major", "major_to_minor", "round_money",
        "unix_to_date", "unix_to_datetime",
    ],
)  # fmt: skip
def test_a_huge_number_is_refused_at_once(convert: Callable[[Any], Any], value: Any) -> None:
    started = time.monotonic()
    if convert is t.to_str and isinstance(value, str | int):
        return  # to_str of text or of an int builds nothing new
    with pytest.raises(ValueError, match=r"too (large|small)|out of range|Exceeds the limit"):
        convert(value)
    assert time.monotonic() - started < 0.5


def test_the_reason_names_the_limit_and_how_to_raise_it() -> None:
    with pytest.raises(ValueError, match="too large") as refused:
        t.to_int("1e999999")
    assert str(refused.value) == (
        "'1e999999' is too large: a number may have at most 40 digits before its decimal point"
        " (CONNECTOR_MAX_DIGITS)"
    )


def test_the_digit_limit_is_configurable(limits_of: Callable[..., None]) -> None:
    limits_of(digits=5)
    assert t.to_int("99999") == 99999
    with pytest.raises(ValueError, match="at most 5 digits"):
        t.to_int("100000")
    with pytest.raises(ValueError, match="at most 5 digits"):
        t.minor_to_major(10**7, "usd")
    limits_of(digits=60)
    assert t.to_int("1" + "0" * 50) == 10**50


def test_money_keeps_every_digit_beyond_28(limits_of: Callable[..., None]) -> None:
    # The default decimal context keeps 28 digits and would round these silently.
    assert str(t.minor_to_major(10**35 + 1, "usd")) == "1" + "0" * 33 + ".01"
    assert t.major_to_minor("1" + "0" * 32 + ".01", "usd") == 10**34 + 1
    assert str(t.round_money("1" + "0" * 32 + ".005")) == "1" + "0" * 32 + ".01"


def test_round_money_refuses_absurd_places() -> None:
    with pytest.raises(ValueError, match="places must be a currency code or a whole number"):
        t.round_money("1.5", 1_000_000)


def test_only_ascii_letters_make_a_currency_code() -> None:
    # Any three letters used to be remembered: millions of spellings, each kept forever.
    with pytest.raises(ValueError, match="is not a three-letter currency code"):
        t.currency_exponent("ÄÖÜ")
    assert "ÄÖÜ" not in t._EXPONENTS


def test_a_long_name_is_split_but_not_remembered() -> None:
    name = "Ada " + "x" * 100_000 + " Lovelace"
    assert t.first_name(name) == "Ada"
    assert t.last_name(name) == "Lovelace"
    assert t._split_short_name.cache_info().currsize <= 8192
    t._split_short_name.cache_clear()
    t.first_name(name)
    assert t._split_short_name.cache_info().currsize == 0


def test_a_huge_amount_in_a_csv_is_dead_lettered_and_the_run_goes_on(
    write_recipe: Callable[..., Path], invoke: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "in.csv").write_text("id,amount\na,100\nb,1e999999\nc,1e9999999\nd,250\n")
    path = write_recipe(
        """
        version: 1
        name: amounts
        source: {use: file.csv, with: {path: in.csv, key: id}}
        map:
          id: record.id
          amount: record.amount | to_int | minor_to_major('usd')
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        """
    )
    started = time.monotonic()
    result = invoke("run", path, "--json")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["outcomes"]["written"] == 2
    assert [(p["key"], p["field"]) for p in report["problems"]] == [
        ("b", "amount"),
        ("c", "amount"),
    ]
    assert "CONNECTOR_MAX_DIGITS" in report["problems"][0]["reason"]


# --- the registry ----------------------------------------------------------------------------


def test_builtin_transforms_lists_every_transform_once() -> None:
    registered = builtin_transforms()
    assert set(registered) == {
        "coalesce", "default", "first_name", "format_date", "join", "last_name", "lookup",
        "lower", "major_to_minor", "minor_to_major", "parse_date", "round_money", "split",
        "strip", "title", "to_decimal", "to_int", "to_str", "unix_to_date", "unix_to_datetime",
        "upper",
    }  # fmt: skip
    assert all(registered[name].__name__ == name for name in registered)
    assert builtin_transforms() is not registered  # callers may change their copy


@pytest.mark.parametrize("name", sorted(builtin_transforms()))
def test_every_transform_is_documented_and_takes_a_value_first(name: str) -> None:
    function = builtin_transforms()[name]
    assert inspect.getdoc(function)
    first = next(iter(inspect.signature(function).parameters.values()))
    assert first.kind in (first.POSITIONAL_OR_KEYWORD, first.VAR_POSITIONAL)


DAY_FIRST_RECIPE = """
version: 1
name: day-first
source: {use: file.csv, with: {path: in.csv, key: id}}
map:
  id: record.id
  day: record.day | parse_date
sink: {use: file.jsonl, with: {path: out.jsonl}}
"""


def test_a_day_first_file_is_never_misread(write_recipe, invoke, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,day\na,01/02/2025\nb,15/01/2025\nc,03/02/2025\n")
    result = invoke("run", "--json", write_recipe(DAY_FIRST_RECIPE))
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["key"] == "a"
    assert problem["field"] == "day"
    assert "'01/02/2025' reads two ways" in problem["reason"]
    assert "parse_date(day_first=True)" in problem["reason"]
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written == [{"id": "b", "day": "2025-01-15"}, {"id": "c", "day": "2025-02-03"}]
    fixed = write_recipe(DAY_FIRST_RECIPE + "day_first: true\n")  # for all the recipe's dates
    assert invoke("dlq", "retry", fixed).exit_code == 0
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[-1]) == {
        "id": "a",
        "day": "2025-02-01",
    }
