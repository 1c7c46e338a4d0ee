"""``connector status``: where did my gifts go?"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import httpx
from pydantic import BaseModel, SecretStr

from connectors.virtuous.gift_transactions import GiftTransactions, GiftTransactionSettings
from connectors.virtuous.holding import Held, read_holding_area
from connectors.virtuous.recovery import GIFT_PREFIX, describe, gift_path
from connectors.virtuous.service import virtuous_client
from core.context import Context
from core.errors import MissingSecretError, RecipeValidationError
from core.http import Service, raise_for_status
from core.state import StateStore

_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@click.command()
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=48,
    show_default=True,
    help="how long a gift may stay in Virtuous's import before it counts as missing",
)
@click.option("--state", "state_path", metavar="PATH", help="state database")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def status(
    session: object, recipe_path: Path, grace_hours: float, state_path: str | None, as_json: bool
) -> None:
    """Where did RECIPE's gifts go? Look up each one it submitted to Virtuous.

    Gift transactions become gifts only after Virtuous's nightly import (and a person's review).
    Each gift is reported as imported (with its Virtuous id, kept in the ledger), pending, set
    aside by the import as "needs update" (with Virtuous's reason, where the holding area can be
    read: the sandbox's), or missing once it has been pending longer than the grace period.
    """
    from core.cli import ExitCode, Session, reports_errors

    @reports_errors
    def run() -> int:
        current = session if isinstance(session, Session) else Session()
        # Only the sink's Virtuous settings are used: the source's secrets (a Stripe key...)
        # need not be set, so unset variables read as placeholders, then the sink is checked.
        recipe = current.recipe(recipe_path, placeholders=True)
        if recipe.sink_class is not GiftTransactions:
            msg = (
                f"connector status follows gifts; {recipe.name} writes to {recipe.sink_class.name}"
            )
            raise RecipeValidationError(msg, where=recipe.located.where(("sink", "use")))
        _require_set(recipe.sink_settings, recipe.located.where(("sink", "with")))
        with current.state(recipe, state_path) as store:
            context = Context(recipe.name, recipe.base_dir, store)
            try:
                assert isinstance(recipe.sink_settings, GiftTransactionSettings)
                client, service = virtuous_client(recipe.sink_settings, context)
                report = _follow(recipe.name, store, client, service, timedelta(hours=grace_hours))
            finally:
                context.close()
        _print(report, as_json)
        attention = report["missing"] or report["needs_update"]
        return ExitCode.RECORDS_FAILED if attention else ExitCode.OK

    sys.exit(run())


def _require_set(settings: BaseModel, where: str) -> None:
    """Refuse settings in which an unset ``${VAR}`` left its ``<VAR>`` placeholder."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        found = _PLACEHOLDER.search(value) if isinstance(value, str) else None
        if found:
            msg = (
                f"environment variable {found.group(1)} is not set; set it, add it to .env,"
                f" or write ${{{found.group(1)}:-default}}"
            )
            raise MissingSecretError(msg, where=where)


def _follow(
    recipe: str, store: StateStore, client: httpx.Client, service: Service, grace: timedelta
) -> dict[str, list[dict[str, str]]]:
    now = datetime.now(UTC)
    report: dict[str, list[dict[str, str]]] = {
        "imported": [],
        "pending": [],
        "needs_update": [],
        "missing": [],
    }
    found = []
    holding: Held | None = None
    looked = False  # the holding area is read once, at the first gift not found
    for entry in store.ledger_entries(recipe):
        sink_key = entry.sink_key or ""
        if sink_key.startswith(GIFT_PREFIX):
            gift_id = sink_key.removeprefix(GIFT_PREFIX)
            report["imported"].append({"key": entry.key, "gift_id": gift_id})
            continue
        path = gift_path(sink_key)
        if path is None:
            continue
        source, txn = describe(sink_key)
        response = client.get(path)
        row = {
            "key": entry.key,
            "transactionSource": source,
            "transactionId": txn,
            "submitted_at": entry.updated_at,
        }
        if response.status_code == 404:
            if not looked:
                holding, looked = read_holding_area(client), True
            held = (holding or {}).get((row["transactionSource"], row["transactionId"]))
            if held is not None and held.get("state") == "needs update":
                report["needs_update"].append({**row, "reason": str(held.get("reason") or "")})
                continue
            age = now - datetime.fromisoformat(entry.updated_at)
            report["missing" if age > grace else "pending"].append(row)
            continue
        raise_for_status(response, service)
        gift_id = str(response.json()["id"])
        found.append((entry.key, f"gift/{gift_id}"))
        report["imported"].append({**row, "gift_id": gift_id})
    store.set_sink_key(recipe, found)
    return report


def _print(report: dict[str, list[dict[str, str]]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"imported into Virtuous: {len(report['imported'])}")
    click.echo(f"pending (in the import): {len(report['pending'])}")
    click.echo(f"set aside by the import (needs update): {len(report['needs_update'])}")
    for row in report["needs_update"]:
        click.echo(
            f"  needs update {row['transactionSource']}/{row['transactionId']}: {row['reason']}"
        )
    click.echo(f"missing after the grace period: {len(report['missing'])}")
    for row in report["missing"]:
        click.echo(
            f"  missing {row['transactionSource']}/{row['transactionId']}"
            f" (submitted {row['submitted_at']}): check Virtuous's import for"
            " 'needs update' records",
            err=True,
        )
