"""SIGTERM and SIGINT handled for a while (``connector serve``, ``connector worker``)."""

from __future__ import annotations

import signal

from core.stop_signals import stop_signals_handled


def test_a_stop_signal_reaches_the_handler_and_the_old_handlers_come_back() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    seen: list[signal.Signals] = []
    with stop_signals_handled(seen.append):
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert seen == [signal.SIGTERM, signal.SIGINT]
    assert {sig: signal.getsignal(sig) for sig in before} == before
