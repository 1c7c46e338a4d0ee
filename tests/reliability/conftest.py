"""Prints the suites' figures (kills survived, requests faulted, duplicates and losses found)."""

from __future__ import annotations

from typing import Any

from tests.reliability.support import TALLY, tally_line


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.kills or TALLY.faulted or TALLY.gifts_checked:
        terminalreporter.write_line(tally_line())
