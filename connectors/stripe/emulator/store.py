"""The Stripe emulator's data: customers, charges, balance transactions, refunds and events.

Objects are kept as Stripe sends them, with expandable fields holding ids; :meth:`StripeStore.view`
expands them per request. Seeding builds complete, realistic objects from a few fields, so a test
says only what it cares about::

    store.seed_charge({"amount": 2500, "currency": "jpy", "customer": {"name": "Ada Lovelace"}})
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from connectors.stripe.emulator.index import INDEXED, Span, TableIndex, first, walk
from core.emulation import WebhookDeliverer, hmac_sha256
from core.transforms import currency_exponent

API_VERSION = "2026-10-28.endive"
Obj = dict[str, Any]

_PREFIXES = {
    "cus": "customers",
    "ch": "charges",
    "txn": "balance_transactions",
    "re": "refunds",
    "evt": "events",
    "we": "webhook_endpoints",
}
#: Which fields of each object type hold the id of an object that ``expand[]`` can replace.
EXPANDABLE = {
    "charge": {"customer", "balance_transaction"},
    "refund": {"charge", "balance_transaction"},
    "balance_transaction": {"source"},
    "customer": set[str](),
    "event": set[str](),
    "webhook_endpoint": set[str](),
}
#: Refund statuses, and those whose amount counts as refunded on the charge.
_REFUND_STATUSES = frozenset({"pending", "requires_action", "succeeded", "failed", "canceled"})
_UNDER_WAY = frozenset({"pending", "succeeded"})
#: An event type as Stripe names them (``charge.refund.updated``), or ``*`` for all of them.
_EVENT_TYPE = re.compile(r"^\*$|^[a-z_]+(\.[a-z_]+)+$")
_NAMES = [
    "Ada Lovelace",
    "Grace Hopper",
    "Katherine Johnson",
    "Alan Turing",
    "Mary Jackson",
    "Dorothy Vaughan",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
]


class StoreError(Exception):
    """A request the store refuses; the app renders it as Stripe's error envelope."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def missing(kind: str, object_id: str, param: str | None = "id", status: int = 404) -> StoreError:
    return StoreError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def _address(
    line1: str | None = None,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    country: str | None = None,
) -> Obj:
    return {
        "city": city,
        "country": country,
        "line1": line1,
        "line2": None,
        "postal_code": postal_code,
        "state": state,
    }


def default_fee(amount: int, currency: str) -> int:
    """Stripe's standard card pricing, 2.9% + 30 cents, scaled to the currency's minor unit."""
    exponent = currency_exponent(currency)
    fixed = 30 * 10 ** (exponent - 2) if exponent >= 2 else 0
    return round(amount * 0.029) + fixed


class StripeStore:
    """Everything one emulated Stripe account holds. Thread-safe: tests seed it directly while
    the server thread answers requests."""

    def __init__(
        self, clock: Callable[[], float] = time.time, deliverer: WebhookDeliverer | None = None
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        #: Sends each event to the webhook endpoints that enabled it (none: nothing is sent).
        self.deliverer = deliverer
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.customers: dict[str, Obj] = {}
            self.charges: dict[str, Obj] = {}
            self.balance_transactions: dict[str, Obj] = {}
            self.refunds: dict[str, Obj] = {}
            self.events: dict[str, Obj] = {}
            self.webhook_endpoints: dict[str, Obj] = {}
            self.endpoint_secrets: dict[str, str] = {}  # never in the object: shown once
            self.idempotent: dict[str, tuple[int, Obj]] = {}
            self._order: dict[str, int] = {}
            self.indexes = {table: TableIndex(fields) for table, fields in INDEXED.items()}
            self._ids = itertools.count(1)
            if self.deliverer is not None:
                self.deliverer.clear()

    def now(self) -> int:
        return int(self.clock())

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_emu{next(self._ids):017d}"

    def _put(self, table: dict[str, Obj], obj: Obj) -> Obj:
        self._order[obj["id"]] = len(self._order)
        table[obj["id"]] = obj
        self.indexes[obj["object"] + "s"].add(obj, self.rank(obj))
        return obj

    # --- lookup and expansion ------------------------------------------------------------

    def find(self, object_id: str) -> Obj | None:
        table = _PREFIXES.get(object_id.split("_", 1)[0])
        return getattr(self, table).get(object_id) if table else None

    def get(self, table: str, object_id: str, kind: str) -> Obj:
        with self.lock:
            obj: Obj | None = getattr(self, table).get(object_id)
            if obj is None:
                raise missing(kind, object_id)
            return obj

    def view(self, obj: Obj, expand: Iterable[str]) -> Obj:
        """A copy of ``obj`` with each dotted path of ``expand`` replaced by its object."""
        result = copy.deepcopy(obj)
        for path in expand:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, obj: Obj, parts: list[str], path: str) -> None:
        head, rest = parts[0], parts[1:]
        if head not in EXPANDABLE.get(obj.get("object", ""), set()):
            raise StoreError(
                400,
                f"This property cannot be expanded ({head}).",
                param="expand",
                code="parameter_invalid",
            )
        value = obj.get(head)
        if isinstance(value, str):
            target = self.find(value)
            value = obj[head] = copy.deepcopy(target) if target is not None else value
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)

    def rank(self, obj: Obj) -> tuple[int, int]:
        """Where ``obj`` sorts in a list: by ``created``, ties by the order they were made."""
        return obj["created"], self._order[obj["id"]]

    def listed(
        self,
        table: str,
        span: Span,
        count: int,
        *,
        wanted: Mapping[str, Any] | None = None,
        types: Callable[[str], bool] | None = None,
        newest_first: bool = True,
    ) -> list[Obj]:
        """Up to ``count`` objects of ``table`` ranked inside ``span`` whose fields equal
        ``wanted`` and (events) whose type ``types`` accepts, newest first unless not
        ``newest_first``. Only the objects looked at cost: the index finds where to start."""
        with self.lock:
            index, objects = self.indexes[table], getattr(self, table)
            sources, rest = index.sources(dict(wanted or {}))
            if types is not None:
                sources = [index.by_value["type", t] for t in index.texts("type") if types(t)]
            entries = walk(sources, span, newest_first=newest_first)

            def keep(obj: Obj) -> bool:
                return all(obj.get(k) == v for k, v in rest.items())

            return first(entries, objects.__getitem__, keep, count)

    # --- seeding -------------------------------------------------------------------------

    def seed_customer(self, spec: Mapping[str, Any]) -> Obj:
        with self.lock:
            customer_id = spec.get("id") or self.new_id("cus")
            if customer_id in self.customers:
                return self.customers[customer_id]
            address = spec.get("address")
            customer: Obj = {
                "id": customer_id,
                "object": "customer",
                "address": _address(**address) if isinstance(address, dict) else None,
                "balance": 0,
                "created": int(spec.get("created", self.now())),
                "currency": None,
                "default_source": None,
                "delinquent": False,
                "description": spec.get("description"),
                "discount": None,
                "email": spec.get("email"),
                "invoice_prefix": customer_id[-8:].upper(),
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "livemode": False,
                "metadata": dict(spec.get("metadata") or {}),
                "name": spec.get("name"),
                "next_invoice_sequence": 1,
                "phone": spec.get("phone"),
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
            self._put(self.customers, customer)
            self._event("customer.created", customer, customer["created"])
            return customer

    def seed_charge(self, spec: Mapping[str, Any]) -> Obj:
        """A charge from ``spec``: ``amount``, ``currency``, ``created``, ``status``,
        ``captured`` (false: only authorized, see :meth:`capture`), ``customer`` (an id, or a
        dict that creates one), ``billing_details``, ``metadata``, ``description``, ``fee``
        (minor units), ``refunds`` (a list of refund specs), ``disputed`` (the donor's bank
        disputes it: only the charge's flag, no dispute object)."""
        with self.lock:
            customer = spec.get("customer")
            if isinstance(customer, dict):
                customer = self.seed_customer(customer)
            elif isinstance(customer, str):
                customer = self.get("customers", customer, "customer")
            charge = self._charge(spec, customer)
            self._put(self.charges, charge)
            if charge["status"] != "failed" and charge["captured"]:
                txn = self._balance_transaction(
                    charge, charge["amount"], spec.get("fee"), "charge", charge["created"]
                )
                charge["balance_transaction"] = txn["id"]
            kind = {"succeeded": "charge.succeeded", "pending": "charge.pending"}
            self._event(kind.get(charge["status"], "charge.failed"), charge, charge["created"])
            for refund in spec.get("refunds") or []:
                self.create_refund({"charge": charge["id"], **refund})
            return charge

    def _charge(self, spec: Mapping[str, Any], customer: Obj | None) -> Obj:
        charge_id = spec.get("id") or self.new_id("ch")
        amount = int(spec.get("amount", 2500))
        status = spec.get("status", "succeeded")
        billing = spec.get("billing_details") or {}
        address = billing.get("address")
        name = billing.get("name", customer["name"] if customer else None)
        email = billing.get("email", customer["email"] if customer else None)
        failed = status == "failed"
        captured = not failed and bool(spec.get("captured", True))
        bank = spec.get("payment_method_type") == "us_bank_account" or status == "pending"
        return {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if captured else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": {
                "address": _address(**address) if isinstance(address, dict) else _address(),
                "email": email,
                "name": name,
                "phone": billing.get("phone"),
                "tax_id": None,
            },
            "calculated_statement_descriptor": "EMULATED NONPROFIT",
            "captured": captured,
            "created": int(spec.get("created", self.now())),
            "currency": str(spec.get("currency", "usd")).lower(),
            "customer": customer["id"] if customer else None,
            "description": spec.get("description"),
            "disputed": bool(spec.get("disputed", False)),
            "failure_balance_transaction": None,
            "failure_code": "card_declined" if failed else None,
            "failure_message": "Your card was declined." if failed else None,
            "fraud_details": {},
            "livemode": False,
            "metadata": {str(k): str(v) for k, v in (spec.get("metadata") or {}).items()},
            "on_behalf_of": None,
            "outcome": {
                "network_status": "declined_by_network" if failed else "approved_by_network",
                "reason": "generic_decline" if failed else None,
                "risk_level": "normal",
                "seller_message": "The bank did not return any further details with this decline."
                if failed
                else "Payment complete.",
                "type": "issuer_declined" if failed else "authorized",
            },
            "paid": status == "succeeded",
            "payment_intent": self.new_id("pi"),
            "payment_method": self.new_id("pm"),
            "payment_method_details": _method_details(bank),
            "receipt_email": email,
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/emulated/{charge_id}",
            "refunded": False,
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": status,
            "transfer_data": None,
            "transfer_group": None,
        }

    def _balance_transaction(
        self, source: Obj, amount: int, fee: int | None, kind: str, created: int
    ) -> Obj:
        currency = source["currency"]
        fee = default_fee(amount, currency) if fee is None and kind == "charge" else (fee or 0)
        txn = {
            "id": self.new_id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": created + 2 * 86_400,
            "created": created,
            "currency": currency,
            "description": source.get("description"),
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else [],
            "net": amount - fee,
            "reporting_category": kind,
            "source": source["id"],
            "status": "pending" if source.get("status") == "pending" else "available",
            "type": kind,
        }
        return self._put(self.balance_transactions, txn)

    def capture(self, charge_id: str, fee: int | None = None) -> Obj:
        """Capture an authorized charge in full (``POST /v1/charges/{id}/capture``): the money
        moves now, so the balance transaction is made now; ``created`` stays."""
        with self.lock:
            charge = self.get("charges", charge_id, "charge")
            if charge["captured"] or charge["status"] != "succeeded" or charge["refunded"]:
                raise StoreError(
                    400,
                    f"Charge {charge_id} has already been captured.",
                    code="charge_already_captured",
                )
            previous = {"captured": False, "amount_captured": 0}
            charge["captured"], charge["amount_captured"] = True, charge["amount"]
            now = self.now()
            txn = self._balance_transaction(charge, charge["amount"], fee, "charge", now)
            charge["balance_transaction"] = txn["id"]
            self._event("charge.captured", charge, now, previous)
            return charge

    def create_refund(self, spec: Mapping[str, Any]) -> Obj:
        """Refund ``spec["amount"]`` (default: what is left) of ``spec["charge"]``."""
        with self.lock:
            charge_id = spec.get("charge")
            if not charge_id:
                raise StoreError(
                    400,
                    "One of the following params should be provided for this "
                    "request: payment_intent or charge.",
                )
            charge = self.charges.get(str(charge_id))
            if charge is None:
                raise missing("charge", str(charge_id), param="charge", status=400)
            left = charge["amount"] - charge["amount_refunded"]
            if charge["status"] == "failed":
                raise StoreError(
                    400,
                    f"Charge {charge['id']} has failed and cannot be refunded.",
                    code="charge_not_refundable",
                )
            if left <= 0:
                raise StoreError(
                    400,
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = _positive(spec.get("amount", left))
            if amount > left:
                raise StoreError(
                    400,
                    f"Refund amount ({_money(amount, charge)}) is greater than unrefunded "
                    f"amount on charge ({_money(left, charge)})",
                    code="amount_too_large",
                    param="amount",
                )
            return self._refund(charge, amount, spec)

    def _refund(self, charge: Obj, amount: int, spec: Mapping[str, Any]) -> Obj:
        created = int(spec.get("created", self.now()))
        status = spec.get("status", "succeeded")
        refund = {
            "id": spec.get("id") or self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": created,
            "currency": charge["currency"],
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": {str(k): str(v) for k, v in (spec.get("metadata") or {}).items()},
            "payment_intent": charge["payment_intent"],
            "reason": spec.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": status,
            "transfer_reversal": None,
        }
        self._put(self.refunds, refund)
        if status in ("succeeded", "pending"):
            txn = self._balance_transaction(refund, -amount, 0, "refund", created)
            refund["balance_transaction"] = txn["id"]
            previous = {
                "amount_refunded": charge["amount_refunded"],
                "refunded": charge["refunded"],
            }
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            self._event("charge.refunded", charge, created, previous)
        self._event("refund.created", refund, created)
        return refund

    def settle_refund(self, refund_id: str, status: str) -> Obj:
        """A refund's status changes as the bank answers (a pending refund succeeds or fails):
        a refund no longer under way gives its amount back to the charge, and Stripe sends
        ``charge.refund.updated`` and ``refund.updated`` with the refund."""
        if status not in _REFUND_STATUSES:
            raise StoreError(400, f"Invalid status: must be one of {sorted(_REFUND_STATUSES)}")
        with self.lock:
            refund = self.get("refunds", refund_id, "refund")
            if refund["status"] == status:
                return refund
            previous = {"status": refund["status"]}
            charge = self.charges[refund["charge"]]
            was, now_counts = refund["status"] in _UNDER_WAY, status in _UNDER_WAY
            if was != now_counts:
                charge["amount_refunded"] += refund["amount"] if now_counts else -refund["amount"]
                charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            refund["status"] = status
            at = self.now()
            self._event("charge.refund.updated", refund, at, previous)
            self._event("refund.updated", refund, at, previous)
            return refund

    def _event(self, kind: str, obj: Obj, created: int, previous: Obj | None = None) -> None:
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        targets = self._endpoints_for(kind)
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": False,
            "pending_webhooks": len(targets),
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        self._put(self.events, event)
        self._deliver(event, targets)

    # --- webhook endpoints and deliveries -----------------------------------------------------

    def create_webhook_endpoint(self, params: Mapping[str, Any]) -> Obj:
        """``POST /v1/webhook_endpoints``: the endpoint, with its signing secret (shown only in
        this answer, as Stripe does)."""
        url, events = params.get("url"), params.get("enabled_events")
        if not url:
            raise _missing_param("url")
        if not str(url).startswith(("https://", "http://")):
            raise StoreError(400, f"Invalid URL: {url}", code="url_invalid", param="url")
        if isinstance(events, dict):  # enabled_events[0]=... arrives as indices
            events = list(events.values())
        if not events:
            raise _missing_param("enabled_events")
        for index, name in enumerate([events] if isinstance(events, str) else events):
            if not _EVENT_TYPE.match(str(name)):
                param = f"enabled_events[{index}]"
                raise StoreError(
                    400, f"Invalid {param}: {name}", code="parameter_invalid", param=param
                )
        with self.lock:
            endpoint: Obj = {
                "id": self.new_id("we"),
                "object": "webhook_endpoint",
                "api_version": params.get("api_version"),
                "application": None,
                "created": self.now(),
                "description": params.get("description") or None,
                "enabled_events": [events] if isinstance(events, str) else list(events),
                "livemode": False,
                "metadata": {str(k): str(v) for k, v in (params.get("metadata") or {}).items()},
                "status": "enabled",
                "url": str(url),
            }
            self._put(self.webhook_endpoints, endpoint)
            secret = "whsec_" + secrets.token_urlsafe(24)
            self.endpoint_secrets[endpoint["id"]] = secret
            return {**endpoint, "secret": secret}

    def delete_webhook_endpoint(self, endpoint_id: str) -> Obj:
        with self.lock:
            endpoint = self.webhook_endpoints.pop(endpoint_id, None)
            if endpoint is None:
                raise missing("webhook_endpoint", endpoint_id)
            self.indexes["webhook_endpoints"].remove(endpoint, self.rank(endpoint))
            self.endpoint_secrets.pop(endpoint_id, None)
            return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    def _endpoints_for(self, kind: str) -> list[Obj]:
        return [
            e
            for e in self.webhook_endpoints.values()
            if e["status"] == "enabled"
            and ("*" in e["enabled_events"] or kind in e["enabled_events"])
        ]

    def _deliver(self, event: Obj, targets: list[Obj]) -> None:
        """POST ``event`` to each endpoint in ``targets``, signed anew at each attempt."""
        if self.deliverer is None or not targets:
            return
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        for endpoint in targets:
            sign = functools.partial(_signature, self.endpoint_secrets[endpoint["id"]])
            self.deliverer.send(endpoint["url"], body, headers, event["type"], sign)

    def snapshot(self) -> Obj:
        with self.lock:
            return copy.deepcopy(
                {
                    "customers": list(self.customers.values()),
                    "charges": list(self.charges.values()),
                    "balance_transactions": list(self.balance_transactions.values()),
                    "refunds": list(self.refunds.values()),
                    "events": list(self.events.values()),
                    "webhook_endpoints": list(self.webhook_endpoints.values()),
                }
            )


def stripe_signature(secret: str, body: bytes, at: int) -> str:
    """The ``Stripe-Signature`` of ``body`` sent at ``at``: ``t=<at>,v1=<hex HMAC-SHA256 of
    "<at>.<body>">``, keyed by the endpoint's secret as-is (``whsec_`` included)."""
    return f"t={at},v1={hmac_sha256(secret, f'{at}.'.encode() + body)}"


def _signature(secret: str, body: bytes) -> dict[str, str]:
    # The receiver compares the timestamp with its own clock: the real one, not the store's.
    return {"Stripe-Signature": stripe_signature(secret, body, int(time.time()))}


def _missing_param(name: str) -> StoreError:
    return StoreError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)


def _method_details(bank: bool) -> Obj:
    if bank:
        return {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "last4": "6789",
                "routing_number": "110000000",
            },
        }
    return {
        "type": "card",
        "card": {
            "brand": "visa",
            "country": "US",
            "exp_month": 12,
            "exp_year": 2030,
            "funding": "credit",
            "last4": "4242",
            "network": "visa",
        },
    }


def _positive(value: Any) -> int:
    try:
        amount = int(value)
    except (TypeError, ValueError):
        raise StoreError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param="amount"
        ) from None
    if amount < 1:
        raise StoreError(
            400,
            "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer",
            param="amount",
        )
    return amount


def _money(minor: int, charge: Obj) -> str:
    exponent = currency_exponent(charge["currency"])
    major = minor / 10**exponent
    return f"{major:.{exponent}f} {charge['currency'].upper()}"


def seed_charges(
    store: StripeStore,
    n: int,
    *,
    start: int = 1_735_689_600,
    spacing: int = 3600,
    amount: int = 2500,
    currency: str = "usd",
    status: str = "succeeded",
    metadata: Mapping[str, str] | None = None,
    customers: bool = True,
) -> list[Obj]:
    """Seed ``n`` charges ``spacing`` seconds apart from ``start``, with donors from a fixed
    cast; ``amount`` grows by 100 minor units per charge so each one is told apart."""
    made = []
    for index in range(n):
        name = _NAMES[index % len(_NAMES)]
        email = name.lower().replace(" ", ".") + "@example.org"
        spec: Obj = {
            "amount": amount + 100 * index,
            "currency": currency,
            "status": status,
            "created": start + spacing * index,
            "metadata": dict(metadata or {}),
            "description": "Donation",
            "billing_details": {
                "name": name,
                "email": email,
                "address": {
                    "line1": f"{index + 1} Main St",
                    "city": "Phoenix",
                    "state": "AZ",
                    "postal_code": "85004",
                    "country": "US",
                },
            },
        }
        if customers:
            spec["customer"] = {"name": name, "email": email, "created": spec["created"]}
        made.append(store.seed_charge(spec))
    return made
