"""The query engine behind ``POST /api/{Contact,Gift,Project}/Query``.

A body is ``{"groups": [{"conditions": [{parameter, operator, value, secondaryValue, values}]}],
"sortBy": ..., "descending": ...}``. Conditions in a group are ANDed, groups are ORed, and no
groups means everything. Parameter and sort names are matched ignoring spaces and case, so
``"Gift Id"``, ``"GiftId"`` and ``"Id"`` are one name. A parameter with several values per record
(a contact's email addresses, a gift's project codes) matches when any value does; its negations
(``IsNot``, ``NotIn``, ...) match when none does. ``Last Modified Date`` compares dates only, as the
real API does; ``Last Modified DateTime UTC`` compares the full timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.virtuous.emulator.store import Contact, EmulatorState, Gift, Project, Record
from connectors.virtuous.emulator.transactions import (
    lower_keys,
    parse_amount,
    parse_date,
    parse_int,
)


class QueryError(Exception):
    """The query is malformed; the message is what the 400 says."""


Getter = Callable[[EmulatorState, Any], Any]


@dataclass(frozen=True)
class Param:
    """One query parameter: its display name, value kind and how to read it from a record."""

    name: str
    kind: str  # int, decimal, text, date, datetime or bool
    get: Getter


def _squash(name: str) -> str:
    return name.replace(" ", "").replace("_", "").lower()


def _table(*params: Param, **aliases: str) -> dict[str, Param]:
    table = {_squash(p.name): p for p in params}
    table.update({alias: table[_squash(target)] for alias, target in aliases.items()})
    return table


def _created(_: EmulatorState, r: Record) -> datetime:
    return r.created


def _modified(_: EmulatorState, r: Record) -> datetime:
    return r.modified


_AUDIT = (
    Param("Create Date", "date", _created),
    Param("Last Modified Date", "date", _modified),
    Param("Create DateTime UTC", "datetime", _created),
    Param("Last Modified DateTime UTC", "datetime", _modified),
)
_AUDIT_ALIASES = {
    "createddatetime": "Create DateTime UTC",
    "createdate": "Create Date",
    "modifieddatetime": "Last Modified DateTime UTC",
    "modifieddate": "Last Modified Date",
}


def _gift_projects(state: EmulatorState, gift: Gift) -> list[Project]:
    found = (state.projects.get(d.project_id) for d in gift.designations)
    return [p for p in found if p is not None]


def _contact_name(state: EmulatorState, gift: Gift) -> str | None:
    contact = state.contacts.get(gift.contact_id)
    return contact.name if contact else None


GIFT_PARAMS = _table(
    Param("Gift Id", "int", lambda s, g: g.id),
    Param("Contact Id", "int", lambda s, g: g.contact_id),
    Param("Contact Individual Id", "int", lambda s, g: g.contact_individual_id),
    Param("Contact Name", "text", _contact_name),
    Param("Transaction Source", "text", lambda s, g: g.transaction_source),
    Param("Transaction Id", "text", lambda s, g: g.transaction_id),
    Param("Gift Date", "date", lambda s, g: g.gift_date),
    Param("Receipt Date", "date", lambda s, g: g.receipt_date),
    Param("Amount", "decimal", lambda s, g: g.amount),
    Param("Gift Type", "text", lambda s, g: g.gift_type),
    Param("Batch", "text", lambda s, g: g.batch),
    Param("Notes", "text", lambda s, g: g.notes),
    Param("Currency Code", "text", lambda s, g: g.currency_code),
    Param("Segment Code", "text", lambda s, g: g.segment_code),
    Param("Project Code", "text", lambda s, g: [p.code for p in _gift_projects(s, g)]),
    Param("Project Name", "text", lambda s, g: [p.name for p in _gift_projects(s, g)]),
    Param("Project Id", "int", lambda s, g: [d.project_id for d in g.designations]),
    Param("Private", "bool", lambda s, g: g.is_private),
    Param("Gift Tax-Deductible", "bool", lambda s, g: g.is_tax_deductible),
    *_AUDIT,
    id="Gift Id",
    **_AUDIT_ALIASES,
)


def _people(state: EmulatorState, contact: Contact, attr: str) -> list[Any]:
    return [getattr(i, attr) for i in state.individuals_of(contact.id)]


def _methods(state: EmulatorState, contact: Contact, kind: str) -> list[str]:
    return [m.value for m in state.methods_of(contact.id) if kind in m.type.lower()]


def _address(attr: str) -> Getter:
    def get(state: EmulatorState, contact: Contact) -> Any:
        address = state.primary_address(contact.id)
        return getattr(address, attr) if address else None

    return get


CONTACT_PARAMS = _table(
    Param("Contact Id", "int", lambda s, c: c.id),
    Param("Contact Name", "text", lambda s, c: c.name),
    Param("Contact Type", "text", lambda s, c: c.contact_type),
    Param("First Name", "text", lambda s, c: _people(s, c, "first_name")),
    Param("Last Name", "text", lambda s, c: _people(s, c, "last_name")),
    Param("Email Address", "text", lambda s, c: _methods(s, c, "email")),
    Param("Phone Number", "text", lambda s, c: _methods(s, c, "phone")),
    Param("Address Line 1", "text", _address("address1")),
    Param("City", "text", _address("city")),
    Param("State", "text", _address("state")),
    Param("Postal", "text", _address("postal")),
    Param("Country", "text", _address("country")),
    Param("Tag", "text", lambda s, c: list(c.tags)),
    Param("Reference Id", "text", lambda s, c: [ref for _, ref in c.references]),
    Param("Reference Source", "text", lambda s, c: [src for src, _ in c.references]),
    *_AUDIT,
    id="Contact Id",
    email="Email Address",
    **_AUDIT_ALIASES,
)

PROJECT_PARAMS = _table(
    Param("Project Id", "int", lambda s, p: p.id),
    Param("Project Code", "text", lambda s, p: p.code),
    Param("Project Name", "text", lambda s, p: p.name),
    Param("Project Type", "text", lambda s, p: p.type),
    Param("Active", "bool", lambda s, p: p.is_active),
    *_AUDIT,
    id="Project Id",
    name="Project Name",
    code="Project Code",
    **_AUDIT_ALIASES,
)

_VALUELESS = {"isknown", "isnotknown", "isset", "isnotset", "istrue", "isfalse"}
_NEGATIONS = {
    "isnot": "is",
    "notin": "in",
    "isnoneof": "in",
    "doesnotcontain": "contains",
    "isnotknown": "isknown",
    "isnotset": "isknown",
}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "greaterthan": lambda a, b: a > b,
    "after": lambda a, b: a > b,
    "greaterthanorequal": lambda a, b: a >= b,
    "onorafter": lambda a, b: a >= b,
    "lessthan": lambda a, b: a < b,
    "before": lambda a, b: a < b,
    "lessthanorequal": lambda a, b: a <= b,
    "onorbefore": lambda a, b: a <= b,
}
_TEXT_ONLY = {"contains", "startswith", "endswith"}
_OPERATORS = {"is", "in", "isanyof", "between", "isknown", "isset", "istrue", "isfalse"}
_OPERATORS |= _TEXT_ONLY | set(_NEGATIONS) | set(_COMPARISONS)

_RELATIVE_DAYS = {"today": 0, "yesterday": 1, "tomorrow": -1, "oneweekfromnow": -7}


def _relative_date(phrase: str, today: date) -> date | None:
    squashed = _squash(phrase)
    if squashed in _RELATIVE_DAYS:
        return today - timedelta(days=_RELATIVE_DAYS[squashed])
    if squashed.endswith("daysago") and squashed[:-7].isdigit():
        return today - timedelta(days=int(squashed[:-7]))
    years = {"oneyearago": 1, "twoyearsago": 2}.get(squashed)
    if years:
        return today.replace(year=today.year - years)
    if squashed == "startofthismonth":
        return today.replace(day=1)
    if squashed == "thiscalendaryear":
        return today.replace(month=1, day=1)
    return None


def _coerce(kind: str, raw: Any, today: date) -> Any:
    """A condition's value in the parameter's kind; None when it cannot be read."""
    if kind == "int":
        return parse_int(raw)
    if kind == "decimal":
        return parse_amount(str(raw).replace("$", "").replace(",", ""))
    if kind == "bool":
        return {"true": True, "false": False}.get(str(raw).strip().lower())
    if kind == "date":
        return parse_date(raw) or (_relative_date(raw, today) if isinstance(raw, str) else None)
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
        except ValueError:
            day = _coerce("date", raw, today)
            return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return str(raw).strip().lower()


def _comparable(kind: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if kind == "date" and isinstance(value, datetime):
        return value.date()
    if kind == "datetime" and isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if kind == "decimal":
        return Decimal(value)
    return str(value).lower() if kind == "text" else value


@dataclass(frozen=True)
class Condition:
    """One parsed condition, ready to test records with."""

    param: Param
    operator: str
    negated: bool
    value: Any
    secondary: Any
    values: tuple[Any, ...]

    def test(self, state: EmulatorState, record: Any) -> bool:
        """Whether the record satisfies the condition."""
        raw = self.param.get(state, record)
        actuals = [
            _comparable(self.param.kind, v) for v in (raw if isinstance(raw, list) else [raw])
        ]
        hit = any(self._one(a) for a in actuals) if actuals else self._one(None)
        return hit != self.negated

    def _one(self, actual: Any) -> bool:
        op = self.operator
        if op == "isknown":
            return actual is not None
        if op in ("istrue", "isfalse"):
            return actual is (op == "istrue")
        if actual is None:
            return False
        if op == "is":
            return bool(actual == self.value)
        if op == "in":
            return actual in self.values
        if op == "between":
            return bool(self.value <= actual <= self.secondary)
        if op == "contains":
            return bool(self.value in actual)
        if op == "startswith":
            return bool(actual.startswith(self.value))
        if op == "endswith":
            return bool(actual.endswith(self.value))
        return _COMPARISONS[op](actual, self.value)


def parse_condition(params: dict[str, Param], raw: Any, today: date) -> Condition:
    """Read one condition; raises QueryError naming what is wrong."""
    if not isinstance(raw, dict):
        raise QueryError("A condition must be an object.")
    name = str(raw.get("parameter") or "")
    param = params.get(_squash(name))
    if param is None:
        known = ", ".join(sorted({p.name for p in params.values()}))
        msg = f"The parameter '{name}' is not valid. Valid parameters: {known}."
        raise QueryError(msg)
    operator = _squash(str(raw.get("operator") or ""))
    if operator not in _OPERATORS or (operator in _TEXT_ONLY and param.kind != "text"):
        msg = f"The operator '{raw.get('operator')}' is not valid for parameter '{param.name}'."
        raise QueryError(msg)
    negated = operator in _NEGATIONS
    base = _NEGATIONS.get(operator, "in" if operator == "isanyof" else operator)

    def read(value: Any) -> Any:
        coerced = _coerce(param.kind, value, today)
        if coerced is None or (coerced == "" and base != "is"):
            msg = f"The value '{value}' is not valid for parameter '{param.name}'."
            raise QueryError(msg)
        return coerced

    value = secondary = None
    values: tuple[Any, ...] = ()
    if base == "in":
        listed = raw.get("values")
        if not listed and raw.get("value") not in (None, ""):
            listed = str(raw["value"]).split(",")
        if not listed:
            msg = f"The operator '{raw.get('operator')}' needs values."
            raise QueryError(msg)
        values = tuple(read(v) for v in listed)
    elif base not in _VALUELESS:
        if raw.get("value") is None:
            msg = f"The operator '{raw.get('operator')}' needs a value."
            raise QueryError(msg)
        value = read(raw["value"])
        if base == "between":
            secondary = read(raw.get("secondaryvalue"))
    return Condition(param, base, negated, value, secondary, values)


def _descending(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    flag = {"true": True, "false": False}.get(str(value).strip().lower())
    if flag is None:
        msg = f"The value '{value}' is not valid for descending."
        raise QueryError(msg)
    return flag


def run_query(
    state: EmulatorState, params: dict[str, Param], records: Iterable[Any], body: Any
) -> list[Any]:
    """Every record matching the body, sorted as asked (by id when not asked)."""
    body = lower_keys(body) if body is not None else {}
    if not isinstance(body, dict):
        raise QueryError("The request is invalid.")
    today = state.now().date()
    groups = body.get("groups") or []
    if not isinstance(groups, list):
        raise QueryError("The groups must be a list.")
    parsed = []
    for group in groups:
        conditions = group.get("conditions") if isinstance(group, dict) else None
        if not isinstance(conditions, list | None):
            raise QueryError("The conditions of a group must be a list.")
        parsed.append([parse_condition(params, c, today) for c in conditions or []])
    sort_name = str(body.get("sortby") or "Id")
    sort = params.get(_squash(sort_name))
    if sort is None:
        msg = f"The sortBy '{sort_name}' is not valid."
        raise QueryError(msg)
    matches = [
        r
        for r in records
        if not parsed or any(all(c.test(state, r) for c in group) for group in parsed)
    ]

    def key(record: Any) -> tuple[bool, Any, int]:
        value = sort.get(state, record)
        if isinstance(value, list):
            value = min(value, default=None)
        value = _comparable("datetime" if isinstance(value, datetime) else sort.kind, value)
        return (value is not None, value if value is not None else 0, record.id)

    return sorted(matches, key=key, reverse=_descending(body.get("descending")))
