"""``connector sandbox``: start the emulators, print how to point recipes at them, run some."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import click

from core.cli import ExitCode, Session, pass_session, reports_errors
from core.errors import RecipeError
from core.sandbox import Rounds
from core.sandbox.fleet import Served, chosen, registered_emulators, serving
from core.sandbox.hooks import HookRecipe, serving_hooks, takes_webhooks
from core.sandbox.workspace import environment_set, recipe_copies, write_env

ENV_FILE = "sandbox.env"
STATE_FILE = "state.db"


@click.command()
@click.option(
    "--service",
    "services",
    metavar="NAME",
    multiple=True,
    help="start only this service's emulator (repeatable; default: every one)",
)
@click.option(
    "--run",
    "recipes",
    metavar="RECIPE",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="run a recipe against the emulators (repeatable)",
)
@click.option("--twice", is_flag=True, help="run the recipes again, to show nothing is sent twice")
@click.option("--serve", is_flag=True, help="keep serving after --run, until Ctrl-C")
@click.option(
    "--faults", is_flag=True, help="switch on the emulators' faults (5xx, 429, lost answers)"
)
@click.option(
    "--seed",
    "seeds",
    metavar="[NAME=]FILE",
    multiple=True,
    help="JSON to start NAME's emulator with, instead of its sample data",
)
@click.option("--port", type=int, default=0, help="first port on 127.0.0.1 (default: free ones)")
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    help="the sandbox's folder: copies of the recipes, their outputs, state, sandbox.env"
    " (default: a new temporary one)",
)
@click.option("--state", "state_path", metavar="PATH", help="state database for the runs")
@pass_session
@reports_errors
def sandbox(
    session: Session,
    services: tuple[str, ...],
    recipes: tuple[Path, ...],
    twice: bool,
    serve: bool,
    faults: bool,
    seeds: tuple[str, ...],
    port: int,
    folder: Path | None,
    state_path: str | None,
) -> None:
    """Every service's emulator on this machine, with sample data: no account needed.

    Prints each emulator's URL and the `export` lines that point recipes at them (also written to
    sandbox.env in the sandbox's folder). With --run, runs recipes against them from copies in
    that folder, so nothing is written beside the recipes; without --run, or with --serve, serves
    until Ctrl-C.
    """
    emulators = chosen(registered_emulators(session.pm), services)
    seed_texts = _seed_texts(seeds, [e.name for e in emulators])
    workspace = _workspace(folder)
    if state_path is None:
        _set_aside_earlier_state(workspace)
    with serving(emulators, port=port, seeds=seed_texts, faults=faults) as served:
        variables = _announce(served, workspace, faults)
        code: int = ExitCode.OK
        with environment_set(variables):
            if recipes:
                state = state_path or str(workspace / STATE_FILE)  # a path, or a database URL
                rounds = _Rounds(session, served, workspace, state)
                code = rounds.run(recipes, twice=twice, keep_serving=serve)
            else:
                _serve_until_interrupted()
    sys.exit(code)


def _seed_texts(seeds: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    texts = {}
    for given in seeds:
        name, equals, file = given.partition("=")
        if not equals:
            if len(names) != 1:
                started = ", ".join(names)
                msg = f"name the emulator this seed is for: --seed NAME={given} ({started})"
                raise RecipeError(msg, where="--seed")
            name, file = names[0], given
        if name not in names:
            msg = f"--seed names {name!r}, which is not started; started: {', '.join(names)}"
            raise RecipeError(msg, where="--seed")
        try:
            texts[name] = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            msg = f"cannot read {file}: {getattr(error, 'strerror', None) or error}"
            raise RecipeError(msg, where="--seed") from None
    return texts


def _workspace(folder: Path | None) -> Path:
    if folder is None:
        return Path(tempfile.mkdtemp(prefix="connector-sandbox-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _set_aside_earlier_state(workspace: Path) -> None:
    """Keep an earlier sandbox's state database as ``previous-state.db``: its emulators are gone,
    and its ledger would call every record these fresh ones never saw unchanged."""
    for name in (STATE_FILE, *(STATE_FILE + suffix for suffix in ("-wal", "-shm", "-journal"))):
        earlier = workspace / name
        if earlier.exists():
            earlier.replace(workspace / f"previous-{name}")


def _announce(served: Sequence[Served], workspace: Path, faults: bool) -> dict[str, str]:
    """Print the emulators and their variables; write them to the sandbox's env file."""
    variables: dict[str, str] = {}
    width = max(len(s.name) for s in served) if served else 0
    for one in served:
        seeded = one.emulator.seeded()
        click.echo(f"{one.name:<{width}}  {one.url}  {one.emulator.description}")
        if seeded:
            click.echo(f"{'':<{width}}  holds {seeded}")
        variables.update(one.variables())
    if faults:
        click.echo("faults are on: some requests fail (5xx, 429, lost answers) and are retried")
    env_file = workspace / ENV_FILE
    write_env(env_file, variables)
    click.echo("\nTo point recipes at the sandbox, in another shell:\n")
    for name, value in variables.items():
        click.echo(f"  export {name}={value}")
    click.echo(f"\nor: source {env_file}")
    click.echo(f"Runs' copies, outputs and state: {workspace}")
    return variables


class _Rounds:
    """The recipes run against the emulators: the polled ones by ``connector run`` (twice with
    ``--twice``), the webhook ones served by ``connector serve`` meanwhile."""

    def __init__(
        self, session: Session, served: Sequence[Served], workspace: Path, state: str
    ) -> None:
        self.session = session
        self.served = served
        self.workspace = workspace
        self.state = state
        self.codes: list[int] = []

    def run(self, recipes: Sequence[Path], *, twice: bool, keep_serving: bool) -> int:
        copies = recipe_copies(recipes, self.workspace)
        hooks = [
            HookRecipe(original, copy)
            for original, copy in zip(recipes, copies, strict=True)
            if takes_webhooks(self.session, copy)
        ]
        polled = [(o, c) for o, c in zip(recipes, copies, strict=True) if c not in _copies(hooks)]
        with ExitStack() as stack:
            served_hooks = None
            if hooks:
                served_hooks = stack.enter_context(
                    serving_hooks(self.session, self.served, hooks, self.state)
                )
            self._round(polled, again=False)
            if served_hooks is not None:  # what their polls wrote is in the nightly import too
                served_hooks.wait_drained()
            rounds = Rounds(copies, self.state, self.invoke)
            for one in self.served:
                for line in one.emulator.after_first_round(one.url, rounds):
                    click.echo(line)
            if twice:
                self._round(polled, again=True)
            if served_hooks is not None:
                self.codes.append(served_hooks.show())
            if keep_serving:
                _serve_until_interrupted()
        for one in self.served:
            held = one.emulator.holdings(one.control("GET", "state"))
            if held:
                click.echo(f"\n{one.name} now holds: {held}")
        return max(self.codes, default=ExitCode.OK)

    def _round(self, polled: Sequence[tuple[Path, Path]], *, again: bool) -> None:
        for original, copy in polled:
            click.echo(f"\n$ connector run {original}{' (again)' if again else ''}")
            self.invoke(["run", str(copy)])

    def invoke(self, args: list[str]) -> int:
        self.codes.append(_invoke([*args, "--state", self.state]))
        return self.codes[-1]


def _copies(hooks: Sequence[HookRecipe]) -> set[Path]:
    return {hook.copy for hook in hooks}


def _invoke(args: list[str]) -> int:
    """Run ``connector ARGS`` in this process; its exit code (its errors are already shown)."""
    from core.cli import cli

    try:
        cli.main(args=args, prog_name="connector", standalone_mode=False)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    return 0


def _serve_until_interrupted() -> None:
    click.echo("\nServing; Ctrl-C stops.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
