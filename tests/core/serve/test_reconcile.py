"""``reconcile:``: validated where it is written, and a poll that fills what webhooks missed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import RecipeError
from core.recipe import load_recipe
from core.registry import Registry
from tests.conftest import write_jsonl
from tests.core.serve.conftest import Bench, recipe_text
from tests.core.serve.signed import SECRET, event

RECONCILE = "reconcile:\n  use: file.jsonl\n  with: {path: all.jsonl, key: id}\n  every: 1h"


def test_the_reconciling_poll_fills_a_lost_event_and_doubles_nothing(
    bench: Callable[..., Bench],
) -> None:
    served = bench(recipe_text(reconcile=RECONCILE))
    write_jsonl(served.directory / "all.jsonl", [{"id": f"g{n}", "amount": n} for n in range(3)])
    served.post(event("g0", amount=0), event("g2", amount=2))  # g1's webhook was lost
    served.drain()
    report = served.drainer.reconcile(served.store)
    assert report is not None
    assert sorted(line["id"] for line in served.out()) == ["g0", "g1", "g2"]
    assert report.counts["written"] == 1
    assert report.counts["unchanged"] == 2
    assert served.metrics.value("connector_reconcile_runs_total", "hooks", result="ok") == 1


def test_a_failing_poll_is_counted_and_the_server_carries_on(bench: Callable[..., Bench]) -> None:
    served = bench(recipe_text(reconcile=RECONCILE))  # all.jsonl does not exist
    assert served.drainer.reconcile(served.store) is None
    assert served.metrics.value("connector_reconcile_runs_total", "hooks", result="failed") == 1


def _load(tmp_path: Path, registry: Registry, text: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    load_recipe(path, registry, env={"TEST_WEBHOOK_SECRET": SECRET})


@pytest.mark.parametrize(
    ("reconcile", "says"),
    [
        (
            "reconcile:\n  use: file.jsonl\n  with: {path: a.jsonl}\n  every: 15 minutes",
            r"recipe.yaml:15:3: reconcile.every: '15 minutes' is not a duration; write it"
            r" like 30s, 15m, 1h or 1h30m",
        ),
        (  # a bare number: no unit to read it in
            "reconcile:\n  use: file.jsonl\n  with: {path: a.jsonl}\n  every: 15",
            r"reconcile.every: '15' is not a duration; write it like 30s, 15m",
        ),
        (
            "reconcile:\n  use: file.jsonl\n  with: {path: a.jsonl}\n  every: 0s",
            r"reconcile.every: .*no time at all",
        ),
        (
            "reconcile:\n  use: file.jsonll\n  with: {path: a.jsonl}",
            r"recipe.yaml:13:\d+: .*file.jsonll.*file.jsonl",
        ),
        (
            "reconcile:\n  use: test.webhook\n  with: {}",
            r"recipe.yaml:13:\d+: reconcile.use: test.webhook is a webhook source",
        ),
        (
            "reconcile:\n  use: file.jsonl\n  with: {paht: a.jsonl}",
            r"recipe.yaml:14:\d+: reconcile.with.paht: unknown key; valid keys: .*path",
        ),
    ],
)
def test_a_wrong_reconcile_block_is_refused_naming_line_and_field(
    tmp_path: Path, test_registry: Registry, reconcile: str, says: str
) -> None:
    with pytest.raises(RecipeError, match=says):
        _load(tmp_path, test_registry, recipe_text(reconcile=reconcile))


def test_reconcile_under_a_polling_source_is_refused(
    tmp_path: Path, test_registry: Registry
) -> None:
    text = recipe_text(reconcile=RECONCILE).replace(
        'use: test.webhook\n  with: {secret: "${TEST_WEBHOOK_SECRET}"}',
        "use: file.jsonl\n  with: {path: in.jsonl}",
    )
    with pytest.raises(
        RecipeError, match=r"recipe.yaml:\d+:\d+: reconcile: .* file.jsonl is polled"
    ):
        _load(tmp_path, test_registry, text)
