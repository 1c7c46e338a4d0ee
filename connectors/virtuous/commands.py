"""``connector status`` (where did my gifts go?) and ``connector sandbox`` (a local Virtuous)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import click
import httpx
from pydantic import BaseModel, SecretStr

from connectors.virtuous.gift_transactions import GiftTransactions, GiftTransactionSettings
from connectors.virtuous.holding import Held, read_holding_area
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
        if entry.sink_key and entry.sink_key.startswith("gift/"):
            report["imported"].append({"key": entry.key, "gift_id": entry.sink_key[5:]})
            continue
        if not entry.sink_key or not entry.sink_key.startswith("txn/"):
            continue
        _, source, txn = entry.sink_key.split("/", 2)
        response = client.get(f"/api/Gift/{source}/{txn}")
        row = {
            "key": entry.key,
            "transactionSource": unquote(source),
            "transactionId": unquote(txn),
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


@click.command()
@click.option(
    "--run",
    "recipes",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="a recipe to run against the sandbox (repeatable)",
)
@click.option(
    "--seed",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON of projects, contacts and gifts to start with (see recipes/data/)",
)
@click.option("--twice", is_flag=True, help="run the recipes a second time after the import")
@click.option("--serve", is_flag=True, help="keep the emulator running until Ctrl-C")
@click.option("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
@click.option("--state", "state_path", metavar="PATH", help="state database for the runs")
def sandbox(
    recipes: tuple[Path, ...],
    seed: Path | None,
    twice: bool,
    serve: bool,
    port: int,
    state_path: str | None,
) -> None:
    """A local Virtuous emulator, with no account needed.

    Recipes run against it with VIRTUOUS_BASE_URL and VIRTUOUS_API_KEY pointing at the
    emulator; then its nightly import runs and what Virtuous holds is shown.
    """
    from connectors.virtuous.emulator.app import create_app
    from core.emulation import EmulatorServer

    with EmulatorServer(create_app(), port=port) as server:
        os.environ["VIRTUOUS_BASE_URL"] = server.url
        os.environ["VIRTUOUS_API_KEY"] = "emulator-key"
        click.echo(f"Virtuous emulator on {server.url} (API key: emulator-key)")
        if seed is not None:
            _seed(server.url, seed)
        rounds = 2 if twice else 1
        for number in range(1, rounds + 1):
            for recipe in recipes:
                click.echo(f"\n$ connector run {recipe}" + (" (again)" if number > 1 else ""))
                _invoke(["run", str(recipe)], state_path)
            if recipes and number == 1:
                summary = httpx.post(f"{server.url}/_emulator/import").json()
                click.echo(
                    f"\nVirtuous's nightly import ran: {summary.get('giftsCreated', 0)} gift(s)"
                    f" and {summary.get('contactsCreated', 0)} contact(s) created,"
                    f" {len(summary.get('needsUpdate') or [])} left for review"
                )
                for recipe in recipes:
                    click.echo(f"\n$ connector status {recipe}")
                    _invoke(["status", str(recipe)], state_path)
        if recipes:
            held = httpx.get(f"{server.url}/_emulator/state").json()
            click.echo(f"\nVirtuous now holds: {json.dumps(held.get('counts', held))}")
        if serve:
            click.echo("serving; Ctrl-C stops")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass


def _seed(url: str, seed: Path) -> None:
    """Load ``seed`` into the emulator; a file it cannot take stops here (exit 2), rather than
    leaving the user to wonder where their records went."""
    try:
        data = json.loads(seed.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        msg = f"{seed} is not JSON: {error}"
        raise click.BadParameter(msg, param_hint="--seed") from None
    response = httpx.post(f"{url}/_emulator/seed", json=data, timeout=30)
    if response.status_code >= 400:
        try:
            said = str(response.json().get("message") or response.text)
        except (ValueError, AttributeError):
            said = response.text
        msg = f"the emulator refused {seed}: {said}"
        raise click.BadParameter(msg, param_hint="--seed")


def _invoke(args: list[str], state_path: str | None) -> None:
    from core.cli import cli

    args = args + (["--state", state_path] if state_path else [])
    try:
        cli.main(args=args, prog_name="connector", standalone_mode=False)
    except SystemExit as done:
        if done.code not in (0, 1, None):
            raise
