"""``parse_money``: amounts as people write them, read exactly in the format the recipe names."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from core.money import parse_money


@pytest.mark.parametrize(
    ("written", "fmt", "amount"),
    [
        ("$40.50", None, "40.50"),
        ("1.234,50 €", "1.234,56", "1234.50"),
        ("1.234,50 €", "de_DE", "1234.50"),
        ("(12.00)", None, "-12.00"),
        ("-$5", None, "-5"),
        ("$-5.00", None, "-5.00"),
        ("12.00-", None, "-12.00"),
        ("US$ 1,000,000.00", None, "1000000.00"),
        ("EUR 12", None, "12"),
        ("1\u202f234,50\u00a0€", "fr", "1234.50"),
        ("1 234,50 kr", "sv_SE", "1234.50"),
        ("CHF 1'234.50", "de-CH", "1234.50"),
        ("1234.5", "1234.56", "1234.5"),
        ("0.000001", None, "0.000001"),
        ("  ", None, None),
        (None, None, None),
        (25, None, "25"),
        (Decimal("2.50"), None, "2.50"),
    ],
)
def test_it_reads_amounts_in_the_format_it_is_given(written, fmt, amount) -> None:
    result = parse_money(written, fmt)
    assert result == (Decimal(amount) if amount is not None else None)
    assert result is None or isinstance(result, Decimal)
    if amount is not None:
        assert str(result) == amount  # exact: no digit added or lost


@pytest.mark.parametrize(
    ("written", "fmt", "said"),
    [
        ("1.234,50", None, "is not written like 1,234.56; if it is written like 1.234,56"),
        ("1,234.50", "de", "is not written like 1.234,56; if it is written like 1,234.56"),
        ("12.3.4", None, "'12.3.4' is not written like 1,234.56"),
        ("1,23,456.00", None, "is not written like 1,234.56"),
        ("abc", None, "'abc' is not an amount (expected a number written like 1,234.56)"),
        ("$40.50 plus tax", None, "is not an amount"),
        ("40.50", "klingon", "unknown money format 'klingon'"),
    ],
)
def test_what_does_not_read_in_the_format_is_refused_saying_what_was_expected(
    written, fmt, said
) -> None:
    with pytest.raises(ValueError, match=re.escape(said)):
        parse_money(written, fmt)


def test_a_bool_is_not_money() -> None:
    with pytest.raises(TypeError):
        parse_money(True)


def test_a_recipe_reads_amounts_written_for_people(invoke, write_recipe) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: money
        source: {use: file.csv, with: {path: in.csv}}
        map:
          amount: record.amount | parse_money('de_DE')
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        tests:
          - input: {amount: "1.234,50 €"}
            expect: {amount: "1234.50"}
        """
    )
    result = invoke("test", recipe)
    assert result.exit_code == 0, result.output
