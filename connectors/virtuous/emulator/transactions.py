"""The Virtuous holding area: validating transaction POSTs and parking them for the import.

Keys are matched case-insensitively (ASP.NET model binding), so every body is lower-cased first;
after that the gift transaction's ``contact.firstname`` and the contact transaction's
``firstName`` are the same key. A batch is atomic: one refused transaction rejects the whole
batch with a ``modelState`` naming its index (``transactions[3].amount``), and nothing is parked.

What is refused depends on ``transaction_validation``. Always: a repeated transactionId, and
what cannot bind (a transaction that is no object, a non-integer ``contact.id``, custom fields or
designations of the wrong shape). In "strict" mode (our inference) also a gift with missing or
bad values; in "lenient" mode (as documented) such a gift is parked with its problems, and the
import sets it aside as "needs update" with them as the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, get_args

from connectors.virtuous.emulator.store import EmulatorState, Payload, Pending, transaction_key
from connectors.virtuous.vocabulary import Frequency

if TYPE_CHECKING:
    from connectors.virtuous.emulator.settings import EmulatorSettings

FREQUENCIES = {f.lower(): f for f in get_args(Frequency)}
"""The valid recurring frequencies; the typos clients send ("Bimontly", "Quaterly") are refused."""

_PRESERVED = {"customfields"}  # their keys are display names, not property names
_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m.%d.%Y", "%m-%d-%Y", "%Y/%m/%d")
_ISO_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def lower_keys(value: Any) -> Any:
    """Lower-case every key, recursively, except inside custom-field maps."""
    if isinstance(value, dict):
        return {
            str(k).lower(): v if str(k).lower() in _PRESERVED else lower_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [lower_keys(item) for item in value]
    return value


def parse_amount(value: Any) -> Decimal | None:
    """A decimal from ``"50.00"`` or ``50``; ``None`` when it is not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def parse_date(value: Any) -> date | None:
    """A gift date in any of the forms clients send: ``7/1/2018``, ``2025-04-05``, ``7.1.2018``,
    or an ISO date-time (only its date part counts, with no time-zone conversion)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _ISO_DATETIME.match(text)
    if match:
        text = match.group(1)
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


def parse_int(value: Any) -> int | None:
    """An int from ``5`` or ``"5"``."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def custom_fields(value: Any) -> dict[str, str] | None:
    """Custom fields from the documented map or the ``[{name, value}]`` form; None if neither."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(i, dict) for i in value):
        pairs = [lower_keys(i) for i in value]
        if all("name" in p for p in pairs):
            return {str(p["name"]): str(p.get("value") or "") for p in pairs}
    return None


def text(payload: Payload, key: str) -> str | None:
    """A stripped, non-empty string value (numbers become strings), else None."""
    value = payload.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


@dataclass
class Rejection:
    """Why a POST was refused; the HTTP layer renders it in the configured error shape."""

    message: str = "The request is invalid."
    model_state: dict[str, list[str]] = field(default_factory=dict)
    duplicate: bool = False

    def add(self, key: str, message: str) -> None:
        """Record one problem with one field."""
        self.model_state.setdefault(key, []).append(message)


def designations_of(tx: Payload) -> tuple[str, Any]:
    """The designations under either documented key, with the key used."""
    if "giftdesignations" in tx and "designations" not in tx:
        return "giftDesignations", tx["giftdesignations"]
    return "designations", tx.get("designations")


def _check_gift(
    tx: Payload, at: str, settings: EmulatorSettings, problems: Rejection, binding: Rejection
) -> None:
    """Put what cannot bind in ``binding``, the other problems in ``problems``."""
    if not text(tx, "gifttype"):
        problems.add(f"{at}.giftType", "The GiftType field is required.")
    amount = parse_amount(tx.get("amount"))
    if tx.get("amount") in (None, ""):
        problems.add(f"{at}.amount", "The Amount field is required.")
    elif amount is None:
        problems.add(f"{at}.amount", f"Could not convert string to decimal: {tx['amount']}.")
    if tx.get("giftdate") in (None, ""):
        problems.add(f"{at}.giftDate", "The GiftDate field is required.")
    elif parse_date(tx["giftdate"]) is None:
        problems.add(f"{at}.giftDate", f"The value '{tx['giftdate']}' is not a valid date.")
    contact = tx.get("contact")
    identity = ("id", "referenceid", "email", "name", "firstname", "lastname")
    if not isinstance(contact, dict) or not any(text(contact, k) for k in identity):
        problems.add(
            f"{at}.contact",
            "A contact with an id, a referenceId, an email or a name is required.",
        )
    elif text(contact, "id") and parse_int(contact["id"]) is None:
        binding.add(f"{at}.contact.id", f"Could not convert string to integer: {contact['id']}.")
    frequency = text(tx, "frequency")
    if frequency and frequency.lower() not in FREQUENCIES:
        valid = ", ".join(FREQUENCIES.values())
        problems.add(f"{at}.frequency", f"'{frequency}' is not a valid frequency ({valid}).")
    if custom_fields(tx.get("customfields")) is None:
        binding.add(f"{at}.customFields", "An error has occurred.")
    key, designations = designations_of(tx)
    if designations is None:
        return
    if not isinstance(designations, list):
        binding.add(f"{at}.{key}", "An error has occurred.")
        return
    total = Decimal(0)
    for i, item in enumerate(designations):
        share = parse_amount(item.get("amountdesignated")) if isinstance(item, dict) else None
        if share is None:
            problems.add(f"{at}.{key}[{i}].amountDesignated", "The value is not a valid amount.")
        else:
            total += share
    if settings.require_designation_sum and designations and amount is not None and total != amount:
        problems.add(f"{at}.{key}", f"The designated amounts ({total}) must equal the amount.")


def _check_contact(tx: Payload, at: str, problems: Rejection) -> None:
    kind = (text(tx, "contacttype") or "Household").lower()
    if kind in ("organization", "foundation"):
        if not text(tx, "name"):
            problems.add(f"{at}.name", "The Name field is required.")
    elif not (text(tx, "lastname") or text(tx, "name")):
        problems.add(f"{at}.lastName", "The LastName field is required.")
    if custom_fields(tx.get("customfields")) is None:
        problems.add(f"{at}.customFields", "An error has occurred.")


def accept_gifts(
    state: EmulatorState,
    settings: EmulatorSettings,
    transactions: list[Any],
    *,
    org: str | None,
    batch: bool,
    import_name: str | None = None,
) -> Rejection | None:
    """Validate gift transactions and park them all, or none (the returned Rejection says why)."""
    problems = Rejection()
    duplicates: list[str] = []
    set_aside: dict[int, str] = {}  # lenient: the problems the import will report
    seen: set[tuple[str, str]] = set()  # the batch's own, as the loop goes
    for i, tx in enumerate(transactions):
        at = f"transactions[{i}]" if batch else "transaction"
        if not isinstance(tx, dict):
            problems.add(at, "An error has occurred.")
            continue
        if settings.transaction_validation == "strict":
            _check_gift(tx, at, settings, problems, problems)
        else:
            content = Rejection()
            _check_gift(tx, at, settings, content, problems)
            if content.model_state:
                set_aside[i] = "; ".join(m for ms in content.model_state.values() for m in ms)
        source, tid = text(tx, "transactionsource"), text(tx, "transactionid")
        if tid is None:
            continue
        key = transaction_key(source, tid)
        if key in seen or state.submitted(key):
            note = f"Transaction '{tid}' from source '{source}' has already been submitted."
            duplicates.append(note)
            problems.add(f"{at}.transactionId", note)
        seen.add(key)
    if problems.model_state:
        if duplicates and len(duplicates) == len(problems.model_state):
            problems.message, problems.duplicate = duplicates[0], True
        return problems
    for i, tx in enumerate(transactions):
        source, tid = text(tx, "transactionsource"), text(tx, "transactionid")
        _park(state, "gift", tx, org, source, tid, import_name, set_aside.get(i))
    return None


def accept_contacts(
    state: EmulatorState, contacts: list[Any], *, org: str | None, batch: bool
) -> Rejection | None:
    """Validate contact transactions and park them all, or none."""
    problems = Rejection()
    for i, tx in enumerate(contacts):
        at = f"contacts[{i}]" if batch else "contact"
        if isinstance(tx, dict):
            _check_contact(tx, at, problems)
        else:
            problems.add(at, "An error has occurred.")
    if problems.model_state:
        return problems
    for tx in contacts:
        _park(state, "contact", tx, org, text(tx, "referencesource"))
    return None


def _park(
    state: EmulatorState,
    kind: str,
    tx: Payload,
    org: str | None,
    source: str | None,
    transaction_id: str | None = None,
    import_name: str | None = None,
    problem: str | None = None,
) -> None:
    """Hold one accepted transaction in the holding area until the next import; one with a
    ``problem`` the import will set aside as "needs update"."""
    state.hold(
        Pending(
            id=state.next_id("pending"),
            kind=kind,
            payload=tx,
            org=org,
            received=state.now(),
            transaction_source=source,
            transaction_id=transaction_id,
            import_name=import_name,
            problem=problem,
        )
    )


def apply_gift_defaults(body: Payload) -> list[Any]:
    """The transactions of a ``/api/v2/Gift/Transactions`` body, with the batch's defaults."""
    defaults = {
        "transactionsource": body.get("transactionsource"),
        "giftdate": body.get("defaultgiftdate"),
        "gifttype": body.get("defaultgifttype"),
        "batch": body.get("batch"),
    }
    transactions = []
    for tx in body.get("transactions") or []:
        if isinstance(tx, dict):
            missing = {k: v for k, v in defaults.items() if v not in (None, "") and not tx.get(k)}
            tx = {**tx, **missing}
        transactions.append(tx)
    return transactions
