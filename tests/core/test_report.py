"""The run report: money totals as a treasurer reads them."""

from __future__ import annotations

from decimal import Decimal

from core.report import RunReport


def test_money_totals_show_each_currency_to_its_decimal_places() -> None:
    report = RunReport("gifts")
    for currency, amount in [("USD", "9545.0"), ("JPY", "1500"), ("KWD", "1.5"), ("EUR", "0.005")]:
        report.add_money(currency, Decimal(amount))
    report.add_money("", Decimal("2.5"))
    assert report.to_dict()["money"] == {
        "": "2.5",  # no currency: shown as summed
        "EUR": "0.005",  # a digit past the currency's places is never rounded away
        "JPY": "1500",
        "KWD": "1.500",
        "USD": "9545.00",
    }


def test_money_totals_of_more_than_28_digits_are_exact() -> None:
    # The default decimal context keeps 28 digits: a sum past them was rounded, then crashed
    # the report (after the commit) when shown to its currency's places.
    report = RunReport(recipe="r")
    report.add_money("USD", Decimal("12345678901234567890123456789.01"))
    report.add_money("USD", Decimal("0.01"))
    report.add_money("JPY", Decimal("99999999999999999999999999999"))
    report.add_money("JPY", Decimal("1"))
    assert report.to_dict()["money"] == {
        "JPY": "100000000000000000000000000000",
        "USD": "12345678901234567890123456789.02",
    }


def test_a_batch_of_undesignated_gifts_adds_up_as_its_gifts_one_by_one() -> None:
    amounts = [Decimal(a) for a in ("12345678901234567890123456789.01", "0.01", "-0.00", "5")]
    one_by_one, at_once = RunReport("r"), RunReport("r")
    for amount in amounts:
        one_by_one.add_money("USD", amount)
        one_by_one.add_money_detail("2026-11-30", "USD", amount)
    at_once.add_undesignated("2026-11-30", "USD", amounts)
    assert at_once.to_dict()["money"] == one_by_one.to_dict()["money"]
    assert (
        at_once.to_dict()["money_detail"]
        == one_by_one.to_dict()["money_detail"]
        == [
            {
                "day": "2026-11-30",
                "currency": "USD",
                "designation": "",
                "amount": "12345678901234567890123456794.02",
            }
        ]
    )
