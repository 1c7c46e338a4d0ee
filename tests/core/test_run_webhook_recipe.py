"""``connector run`` of a webhook recipe: it reads the recipe's ``reconcile:`` poll once (a cron
job between a server's polls), into the same ledger as ``connector serve``; a recipe with none
stops with exit 2 naming its source line and ``connector serve``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from core.cli import ExitCode

HOOKS = """\
version: 1
name: gift-hooks
source:
  use: virtuous.webhook
  with: {secret: "whsec-test", events: [GiftCreate]}
{reconcile}map:
  id: record.id
  amount: record.amount
sink:
  use: file.jsonl
  with: {path: out.jsonl}
"""
RECONCILE = """\
reconcile:
  use: file.jsonl
  with: {path: gifts.jsonl}
  every: 15m
"""


def _outcomes(result: Result) -> dict[str, int]:
    counts = json.loads(result.stdout)["outcomes"]
    return {outcome: n for outcome, n in counts.items() if n}


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_run_reads_the_reconciling_poll_once_and_again_sends_nothing(
    tmp_path: Path, invoke: Callable[..., Result]
) -> None:
    recipe = tmp_path / "hooks.yaml"
    recipe.write_text(HOOKS.replace("{reconcile}", RECONCILE), encoding="utf-8")
    gifts = [{"id": n, "amount": 10 * n} for n in (1, 2)]
    (tmp_path / "gifts.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gifts))

    first = invoke("run", recipe, "--json")
    assert first.exit_code == ExitCode.OK, first.output
    assert "reads its reconcile: source (file.jsonl) once" in first.stderr
    assert _outcomes(first) == {"written": 2}
    assert _lines(tmp_path / "out.jsonl") == gifts

    again = invoke("run", recipe, "--json")
    assert _outcomes(again) == {"unchanged": 2}  # the ledger serve shares


def test_run_of_a_webhook_recipe_without_a_poll_points_at_connector_serve(
    tmp_path: Path, invoke: Callable[..., Result]
) -> None:
    recipe = tmp_path / "hooks.yaml"
    recipe.write_text(HOOKS.replace("{reconcile}", ""), encoding="utf-8")

    result = invoke("run", recipe)

    assert result.exit_code == ExitCode.USAGE
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {recipe}:4:3: source virtuous.webhook takes webhooks")
    assert f"connector serve {recipe}" in line
    assert "add reconcile:" in line
    assert not (tmp_path / "out.jsonl").exists()
