"""Virtuous's fixed lists of values. The connector's models refuse anything else before it is
sent, and the emulator refuses it as Virtuous does, so both read the one list here."""

from __future__ import annotations

from typing import Literal

Frequency = Literal[
    "OneTime",
    "Weekly",
    "Bimonthly",
    "Monthly",
    "Quarterly",
    "Semiannually",
    "Annually",
    "Biennially",
]

#: Gift types as Virtuous names them in reads and webhooks.
GIFT_TYPE_NAMES = (
    "Cash",
    "Check",
    "Credit",
    "Electronic Funds Transfer",
    "Non-Cash",
    "Stock",
    "Other",
    "Cryptocoin",
    "Paypal",
    "Qualified Charitable Distribution",
    "Reversing Transaction",
    "Pledge",
)

#: Other names the import accepts for some of them.
GIFT_TYPE_ALIASES = {
    "EFT": "Electronic Funds Transfer",
    "NonCash": "Non-Cash",
    "Credit Card": "Credit",
}
