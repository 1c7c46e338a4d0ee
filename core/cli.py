"""The ``connector`` command line; the only place errors become messages and exit codes."""

from __future__ import annotations

import enum
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import NoReturn, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from core import output
from core.env import WithPlaceholders, environment
from core.errors import ConnectorError, RecipeError
from core.http.redact import redact_text
from core.plugins import load_plugins
from core.recipe import Recipe, load_recipe
from core.report import RunReport
from core.runner import Runner
from core.state import StateStore, open_state
from core.state.lock import run_lock

P = ParamSpec("P")
R = TypeVar("R")

stderr = Console(stderr=True, highlight=False)

# -v count of this command: at -vv an unforeseen exception shows its traceback.
_verbosity = 0


class ExitCode(enum.IntEnum):
    #: every record succeeded (written, updated, unchanged or filtered)
    OK = 0
    #: the run finished, but some records were dead-lettered or need review
    RECORDS_FAILED = 1
    #: the recipe or the command line is invalid; nothing was read or written
    USAGE = 2
    #: a fatal runtime error: an unreadable input, a refused credential
    FATAL = 3


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's errors into one clear message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RecipeError as error:
            _fail(str(error), ExitCode.USAGE)
        except ConnectorError as error:  # FatalError, PluginError, and anything unforeseen
            _fail(str(error), ExitCode.FATAL)
        except KeyboardInterrupt:
            _fail("interrupted; committed batches are kept, the rest runs next time", 130)
        except Exception as error:  # a bug, or a library's failure nobody mapped: still one line
            if _verbosity >= 2:
                raise
            _fail(_unexpected(error), ExitCode.FATAL)

    return wrapper


def _unexpected(error: BaseException) -> str:
    detail = " ".join(str(error).split())
    what = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return f"unexpected {what} (run again with -vv for details)"


def _fail(message: str, code: int) -> NoReturn:
    for line in redact_text(message).splitlines():
        stderr.print(f"[bold red]error:[/] {escape(line)}", markup=True, soft_wrap=True)
    sys.exit(code)


def _exit_with(report: RunReport, as_json: bool) -> NoReturn:
    if as_json:
        # Reasons are masked when they are recorded; masking the whole text also covers a
        # secret registered later in the run (a token refreshed after a record failed).
        click.echo(redact_text(json.dumps(report.to_dict(), indent=2)))
    else:
        output.print_report(report)
    sys.exit(ExitCode.OK if report.ok else ExitCode.RECORDS_FAILED)


class Session:
    """Plugins and the registry, loaded once per command."""

    def __init__(self) -> None:
        self.pm, self.registry = load_plugins()

    def recipe(self, path: Path, *, placeholders: bool = False) -> Recipe:
        """Load the recipe at ``path``. With ``placeholders``, for commands that reach no service
        (tests, state, the DLQ), unset variables read as ``<NAME>``, so no secret is needed."""
        env = WithPlaceholders(environment(path.parent)) if placeholders else None
        return load_recipe(path, self.registry, env=env)

    @contextmanager
    def state(self, recipe: Recipe, override: str | None) -> Iterator[StateStore]:
        """RECIPE's state store (``--state``, ``CONNECTOR_STATE_URL``, or beside the recipe)."""
        location = override or os.environ.get("CONNECTOR_STATE_URL")
        store = open_state(location or recipe.base_dir / ".connector" / "state.db")
        try:
            yield store
        finally:
            store.close()


def _exclusive(recipe: Recipe, *, dry_run: bool = False) -> AbstractContextManager[None]:
    """The recipe's own lock, wherever its state lives (the runner also locks its name in the
    state database); a dry run writes nothing, so it may look alongside a real run."""
    return nullcontext() if dry_run else run_lock(recipe.path, recipe.name)


pass_session = click.make_pass_decorator(Session, ensure=True)
state_option = click.option(
    "--state",
    "state_path",
    metavar="PATH",
    help="state database (default: .connector/state.db beside the recipe; or CONNECTOR_STATE_URL)",
)
recipe_argument = click.argument(
    "recipe_path", metavar="RECIPE", type=click.Path(path_type=Path, dir_okay=False)
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connector")
@click.option("-v", "--verbose", count=True, help="log more: -v for each run, -vv for each request")
def cli(verbose: int) -> None:
    """Keep your systems in sync with Virtuous CRM+, one YAML recipe at a time."""
    global _verbosity
    _verbosity = verbose
    _configure_logging(verbose)


def _configure_logging(verbose: int) -> None:
    """Log to stderr through the secret filter, so no key reaches a terminal or a log file."""
    from rich.logging import RichHandler

    from core.http.redact import SecretFilter

    handler = RichHandler(console=stderr, show_path=False, markup=False)
    handler.addFilter(SecretFilter())
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


@cli.command()
@recipe_argument
@click.option("--dry-run", is_flag=True, help="read, map and validate; write nothing")
@click.option("--limit", type=click.IntRange(min=1), help="stop after N source records")
@click.option("--json", "as_json", is_flag=True, help="print one JSON run report on stdout")
@state_option
@pass_session
@reports_errors
def run(
    session: Session,
    recipe_path: Path,
    dry_run: bool,
    limit: int | None,
    as_json: bool,
    state_path: str | None,
) -> None:
    """Sync the records of RECIPE's source into its sink."""
    recipe = session.recipe(recipe_path)
    with _exclusive(recipe, dry_run=dry_run), session.state(recipe, state_path) as state:
        runner = Runner(recipe, state, dry_run=dry_run, limit=limit, pm=session.pm)
        with output.progress(runner, enabled=not as_json and sys.stderr.isatty()):
            report = runner.run()
    _exit_with(report, as_json)


@cli.command()
@click.argument(
    "recipe_paths",
    metavar="RECIPE...",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
)
@pass_session
@reports_errors
def validate(session: Session, recipe_paths: tuple[Path, ...]) -> None:
    """Check recipes without reading or writing anything."""
    failed = False
    for path in recipe_paths:
        try:
            recipe = session.recipe(path)
        except RecipeError as error:
            failed = True
            stderr.print(f"[red]✗[/] {path}", markup=True)
            for line in redact_text(str(error)).splitlines():
                stderr.print(f"  {line}", markup=False, soft_wrap=True)
        else:
            click.echo(f"✓ {path}: {recipe.source_class.name} → {recipe.sink_class.name}")
    sys.exit(ExitCode.USAGE if failed else ExitCode.OK)


@cli.command("test")
@recipe_argument
@pass_session
@reports_errors
def test_recipe(session: Session, recipe_path: Path) -> None:
    """Run RECIPE's inline tests: each input must map to its expected output."""
    from core.recipe_tests import run_recipe_tests

    recipe = session.recipe(recipe_path, placeholders=True)
    results = run_recipe_tests(recipe)
    output.print_test_results(recipe, results)
    sys.exit(ExitCode.OK if all(r.passed for r in results) else ExitCode.RECORDS_FAILED)


@cli.command()
@pass_session
@reports_errors
def plugins(session: Session) -> None:
    """List every source, sink and transform, with the plugin that provides it."""
    output.print_plugins(session.registry)


@cli.command()
@pass_session
@reports_errors
def schema(session: Session) -> None:
    """Print a JSON Schema of recipes, for editors' autocompletion."""
    from core.recipe_schema import recipe_json_schema

    click.echo(json.dumps(recipe_json_schema(session.registry), indent=2))


@cli.group()
def state() -> None:
    """Inspect or reset a recipe's cursor and ledger."""


@state.command("show")
@recipe_argument
@state_option
@pass_session
@reports_errors
def state_show(session: Session, recipe_path: Path, state_path: str | None) -> None:
    """Show RECIPE's cursor, ledger counts and dead letters."""
    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        output.print_state(recipe.name, store)


@state.command("reset")
@recipe_argument
@state_option
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@pass_session
@reports_errors
def state_reset(session: Session, recipe_path: Path, state_path: str | None, yes: bool) -> None:
    """Forget RECIPE's cursor, ledger and dead letters (the next run starts over)."""
    recipe = session.recipe(recipe_path, placeholders=True)
    if not yes:
        click.confirm(
            f"Forget everything recipe {recipe.name!r} wrote? Records already in the sink may be"
            " sent again.",
            abort=True,
        )
    with _exclusive(recipe), session.state(recipe, state_path) as store, store.lock(recipe.name):
        store.reset(recipe.name)
    click.echo(f"state of {recipe.name} reset")


@cli.group()
def dlq() -> None:
    """The dead-letter queue: records that did not reach the sink, with the reason."""


@dlq.command("list")
@recipe_argument
@state_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@pass_session
@reports_errors
def dlq_list(session: Session, recipe_path: Path, state_path: str | None, as_json: bool) -> None:
    """List RECIPE's dead letters."""
    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        letters = store.dead_letters(recipe.name)
    output.print_dead_letters(letters, as_json=as_json)


@dlq.command("show")
@recipe_argument
@click.argument("key")
@state_option
@pass_session
@reports_errors
def dlq_show(session: Session, recipe_path: Path, key: str, state_path: str | None) -> None:
    """Show one dead letter, with the source record."""
    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        letters = [d for d in store.dead_letters(recipe.name) if d.key == key]
    if not letters:
        _fail(f"no dead letter {key!r} for recipe {recipe.name}", ExitCode.USAGE)
    output.print_dead_letter(letters[0])


@dlq.command("retry")
@recipe_argument
@state_option
@click.option("--json", "as_json", is_flag=True, help="print one JSON run report on stdout")
@pass_session
@reports_errors
def dlq_retry(session: Session, recipe_path: Path, state_path: str | None, as_json: bool) -> None:
    """Send RECIPE's dead letters through the current recipe again."""
    recipe = session.recipe(recipe_path)
    with _exclusive(recipe), session.state(recipe, state_path) as store:
        runner = Runner(recipe, store, pm=session.pm)
        report = runner.replay()
    _exit_with(report, as_json)


def with_plugin_commands(session: Session) -> click.Group:
    """The command group with the commands plugins add (``connector status``, ...)."""
    session.pm.hook.connector_register_commands(cli=cli)
    return cli


def main() -> None:
    """The console script: load plugins once, let them add commands, run."""
    try:
        session = Session()
        group = with_plugin_commands(session)
        group(prog_name="connector", obj=session)
    except RecipeError as error:  # a plugin's command that does not report its own errors
        _fail(str(error), ExitCode.USAGE)
    except ConnectorError as error:
        _fail(str(error), ExitCode.FATAL)
    except Exception as error:  # outside any command (a plugin's command, loading plugins)
        if _verbosity >= 2:
            raise
        _fail(_unexpected(error), ExitCode.FATAL)
