"""What every source shares (``core.source``): the moment a two-way pair compares records by."""

from __future__ import annotations

import pytest

from core.source import utc_moment


@pytest.mark.parametrize(
    ("reported", "moment"),
    [
        ("2023-12-07T16:10:47.017", "2023-12-07T16:10:47.017000+00:00"),  # Virtuous: no offset
        ("2025-03-01T10:00:00+00:00", "2025-03-01T10:00:00+00:00"),  # Mailchimp
        ("2025-03-01T12:00:00+02:00", "2025-03-01T10:00:00+00:00"),
        ("2025-03-01T10:00:00Z", "2025-03-01T10:00:00+00:00"),
    ],
)
def test_a_reported_moment_is_said_in_utc(reported: str, moment: str) -> None:
    assert utc_moment(reported) == moment


@pytest.mark.parametrize("reported", [None, "", "yesterday", 17])
def test_what_is_no_moment_is_none(reported: object) -> None:
    assert utc_moment(reported) is None
