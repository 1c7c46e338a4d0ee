"""A small cast of donors the built-in emulators' sample data share, so a contact synced from one
service meets the same person's gifts from another."""

from __future__ import annotations

from typing import NamedTuple


class Donor(NamedTuple):
    first: str
    last: str
    email: str
    city: str
    state: str
    postal: str


DONORS = (
    Donor("Ada", "Lovelace", "ada@example.org", "Phoenix", "AZ", "85004"),
    Donor("Grace", "Hopper", "grace@example.org", "Arlington", "VA", "22201"),
    Donor("Katherine", "Johnson", "katherine@example.org", "Hampton", "VA", "23666"),
    Donor("Alan", "Turing", "alan@example.org", "Boston", "MA", "02108"),
    Donor("Mary", "Jackson", "mary@example.org", "Tucson", "AZ", "85701"),
    Donor("Dorothy", "Vaughan", "dorothy@example.org", "Denver", "CO", "80202"),
)

#: Someone none of the services knows yet: the donor a sandbox's provoked webhook announces.
NEWCOMER = Donor("Hedy", "Lamarr", "hedy@example.org", "Vienna", "VA", "22180")
