"""custom_field and designations_text: Virtuous's read shapes turned into single cells."""

from __future__ import annotations

import pytest

from connectors.virtuous.transforms import custom_field, designations_text


def test_custom_field_reads_both_of_virtuous_shapes() -> None:
    listed = [{"name": "Stripe Fee", "value": "3.20", "displayName": "Stripe Fee"}]
    assert custom_field(listed, "Stripe Fee") == "3.20"
    assert custom_field({"Stripe Fee": "3.20"}, "Stripe Fee") == "3.20"
    assert custom_field(listed, "Campaign") is None
    assert custom_field(None, "Stripe Fee") is None


def test_custom_field_refuses_what_is_not_custom_fields() -> None:
    with pytest.raises(TypeError, match="custom_field expects"):
        custom_field("3.20", "Stripe Fee")


def test_designations_text_names_each_project_with_its_amount() -> None:
    rows = [
        {"projectCode": "GENERAL", "amountDesignated": 60.0},
        {"projectCode": None, "project": "Missions", "amountDesignated": 40},
    ]
    assert designations_text(rows, "USD") == "GENERAL 60.00; Missions 40.00"
    assert designations_text(rows, None, " | ") == "GENERAL 60.0 | Missions 40"
    assert designations_text([], "USD") is None
