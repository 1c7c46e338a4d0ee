"""What ``connector serve`` counts, and ``GET /metrics`` in Prometheus' text format."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping

#: name -> help text of every counter (each is labelled by recipe).
COUNTERS: dict[str, str] = {
    "connector_webhook_events_received_total": "events in verified deliveries",
    "connector_webhook_events_ignored_total": "events of types the recipe does not select",
    "connector_webhook_events_processed_total": "events the recipe's sink has (or needed none)",
    "connector_webhook_events_failed_total": "attempts at events that failed (retried later)",
    "connector_webhook_deliveries_rejected_total": "deliveries refused, by reason",
    "connector_reconcile_runs_total": "reconciling polls, by result",
    "connector_records_total": "records synced by the inbox and the reconciling poll, by outcome",
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Counters shared by the server's event loop and its workers."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, Labels]] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str, recipe: str, n: int = 1, **labels: str) -> None:
        assert name in COUNTERS, name
        key = (name, (("recipe", recipe), *sorted(labels.items())))
        with self._lock:
            self._counts[key] += n

    def value(self, name: str, recipe: str, **labels: str) -> int:
        with self._lock:
            return self._counts[(name, (("recipe", recipe), *sorted(labels.items())))]

    def render(
        self,
        recipes: Iterable[str],
        depth: Mapping[tuple[str, str], int],
        budgets: Mapping[str, int],
    ) -> str:
        """The Prometheus exposition: every counter (zero for a served recipe that has none
        yet), the inbox's depth by recipe and status, and each rate budget's requests left."""
        with self._lock:
            counts = dict(self._counts)
        names = list(recipes)
        lines: list[str] = []
        for name, help_text in COUNTERS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            found = sorted((labels, n) for (metric, labels), n in counts.items() if metric == name)
            seen = {dict(labels)["recipe"] for labels, _ in found}
            found += [((("recipe", recipe),), 0) for recipe in names if recipe not in seen]
            lines += [f"{name}{_labels(labels)} {n}" for labels, n in found]
        lines += [
            "# HELP connector_inbox_events events waiting in the inbox, by status",
            "# TYPE connector_inbox_events gauge",
        ]
        for recipe in names:
            for status in ("pending", "failed"):
                n = depth.get((recipe, status), 0)
                lines.append(f"connector_inbox_events{_labels(_recipe(recipe, status))} {n}")
        lines += [
            "# HELP connector_rate_budget_remaining requests left in the service's window,"
            " by budget (a fingerprint of the credential), as the service last reported",
            "# TYPE connector_rate_budget_remaining gauge",
        ]
        lines += [
            f"connector_rate_budget_remaining{_labels((('budget', key),))} {left}"
            for key, left in sorted(budgets.items())
        ]
        return "\n".join(lines) + "\n"


def _recipe(recipe: str, status: str) -> Labels:
    return (("recipe", recipe), ("status", status))


def _labels(labels: Labels) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
