"""The ``connector`` command line; the only place errors become messages and exit codes.

Start-up is paid on every command, so this module imports little at the top: the arguments are
parsed before any plugin is loaded (``--version`` loads none), plugins' commands are added only
when a name is not a built-in one (or ``--help`` lists them all), the registry of sources and sinks
is built only by a command that reads a recipe, and rich, the runner and the state store are
imported by the commands that use them.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import os
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from core import startup
from core.errors import ConnectorError, RecipeError, RecipeValidationError
from core.hints import hint_target

if TYPE_CHECKING:
    import pluggy
    from rich.console import Console

    from core.plugins import Plugins
    from core.recipe import Recipe
    from core.registry import Registry
    from core.report import RunReport
    from core.state import StateStore

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., object])


@functools.cache
def _stderr() -> Console:
    from core.console import console_for

    return console_for(stderr=True)


def progress_wanted(as_json: bool) -> bool:
    """A live progress line: for a person at a terminal, unless ``-q`` or ``--json``."""
    from core import output

    return not as_json and _verbosity >= 0 and output.interactive()


def redact_text(text: str) -> str:
    """:func:`core.http.redact.redact_text`, imported when there is something to mask."""
    from core.http.redact import redact_text

    return redact_text(text)


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
        except (KeyboardInterrupt, click.Abort):  # Abort: Ctrl-C or Ctrl-D at a prompt
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
    from rich.markup import escape

    for line in redact_text(message).splitlines():
        _stderr().print(f"[bold red]error:[/] {escape(line)}", markup=True, soft_wrap=True)
    sys.exit(code)


def exit_with_report(report: RunReport, as_json: bool, recipe_path: Path | str) -> NoReturn:
    """Show a run's report (JSON, or the table) and exit with its code."""
    _show_report(report, as_json, recipe_path)
    sys.exit(ExitCode.OK if report.ok else ExitCode.RECORDS_FAILED)


def _show_report(report: RunReport, as_json: bool, recipe_path: Path | str) -> None:
    from core import output

    if as_json:
        # Reasons are masked when they are recorded; masking the whole text also covers a
        # secret registered later in the run (a token refreshed after a record failed).
        click.echo(redact_text(json.dumps(report.to_dict(), indent=2)))
    else:
        output.print_report(report, recipe_path)


class Session:
    """Plugins and the registry, each loaded once per command, when a command first needs it."""

    def __init__(self) -> None:
        self._loaded: Plugins | None = None
        self._registry: Registry | None = None
        self._commands_added = False

    def _plugins(self) -> Plugins:
        if self._loaded is None:
            from core.plugins import load_plugin_manager

            _without_httpx_command_line()  # before any plugin can import httpx
            self._loaded = load_plugin_manager()
        return self._loaded

    @property
    def pm(self) -> pluggy.PluginManager:
        return self._plugins().pm

    @property
    def registry(self) -> Registry:
        """Every source, sink and transform: built by the first command that reads a recipe."""
        if self._registry is None:
            from core.registry import Registry

            loaded = self._plugins()
            self._registry = Registry.build(loaded.pm, loaded.failures)
        return self._registry

    def add_commands(self, group: click.Group) -> None:
        """Let plugins add their commands to ``group`` (once)."""
        if not self._commands_added:
            self._commands_added = True
            self.pm.hook.connector_register_commands(cli=group)

    def recipe(self, path: Path, *, placeholders: bool = False) -> Recipe:
        """Load the recipe at ``path``. With ``placeholders``, for commands that reach no service
        (tests, state, the DLQ), unset variables read as ``<NAME>``, so no secret is needed."""
        from core.env import WithPlaceholders, environment
        from core.recipe import load_recipe

        env = WithPlaceholders(environment(path.parent)) if placeholders else None
        recipe = load_recipe(path, self.registry, env=env)
        startup.over()
        return recipe

    @contextmanager
    def state(self, recipe: Recipe, override: str | None) -> Iterator[StateStore]:
        """RECIPE's state store (``--state``, ``CONNECTOR_STATE_URL``, or beside the recipe)."""
        from core.state import open_state

        store = open_state(state_locations(override)(recipe))
        try:
            yield store
        finally:
            store.close()


def _exclusive(
    recipe: Recipe, *, dry_run: bool = False, wait: bool = False
) -> AbstractContextManager[None]:
    """The recipe's own lock, wherever its state lives (the runner also locks its name in the
    state database, or leases it in a shared one); a dry run writes nothing, so it may look
    alongside a real run."""
    from core.state.lock import run_lock

    return nullcontext() if dry_run else run_lock(recipe.path, recipe.name, wait=wait)


pass_session = click.make_pass_decorator(Session, ensure=True)


def state_locations(override: str | None) -> Callable[[Recipe], str | Path]:
    """Where each recipe's state store is, as ``--state`` promises: ``override`` (the option),
    else ``CONNECTOR_STATE_URL``, else ``.connector/state.db`` beside the recipe."""
    chosen = override or os.environ.get("CONNECTOR_STATE_URL")

    def location(recipe: Recipe) -> str | Path:
        return chosen or recipe.base_dir / ".connector" / "state.db"

    return location


state_option = click.option(
    "--state",
    "state_path",
    metavar="PATH",
    help=(
        "state database: a path, or postgresql://USER@HOST:PORT/DB for many machines"
        " (default: .connector/state.db beside the recipe; or CONNECTOR_STATE_URL)"
    ),
)
recipe_argument = click.argument(
    "recipe_path", metavar="RECIPE", type=click.Path(path_type=Path, dir_okay=False)
)


def recipes_argument(*, required: bool = True) -> Callable[[F], F]:
    """``RECIPE...``: the recipe files a command takes (``recipe_paths``, a tuple)."""
    return click.argument(
        "recipe_paths",
        metavar="RECIPE...",
        nargs=-1,
        required=required,
        type=click.Path(path_type=Path, dir_okay=False),
    )


class LazyGroup(click.Group):
    """A group whose subcommands named in ``lazy`` (``name -> "module:attribute"``, the attribute
    a click command or group) are imported only when named, or listed by ``--help``."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(_import_command(self.lazy[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})


class CommandGroup(LazyGroup):
    """The root group: built-in commands at once (or, for those in ``LAZY_COMMANDS``, when
    named), plugins' commands when first needed.

    A built-in name never loads a plugin; an unknown name, or ``--help`` listing every command,
    lets the plugins add theirs first.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _verbosity_first(args))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy and cmd_name not in self.commands:
            ctx.ensure_object(Session).add_commands(self)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        ctx.ensure_object(Session).add_commands(self)
        return super().list_commands(ctx)


_VERBOSITY_FLAGS = re.compile(r"-v+|--verbose|-q|--quiet")


def _verbosity_first(args: list[str]) -> list[str]:
    """``connector run recipe.yaml -v`` as ``connector -v run recipe.yaml``: the root's -v and
    -q are taken after the command too (up to a ``--``, after which every word is an argument)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if _VERBOSITY_FLAGS.fullmatch(a)]
    rest = [a for a in args[:end] if not _VERBOSITY_FLAGS.fullmatch(a)]
    return [*flags, *rest, *args[end:]]


#: Built-in commands that live in their own modules, imported only when named (or listed by
#: ``--help``): ``name -> "module:attribute"``, the attribute a click command or group.
LAZY_COMMANDS: dict[str, str] = {
    "sandbox": "core.sandbox.command:sandbox",
    "init": "core.init:init",
    "serve": "core.serve.command:serve",
    "inbox": "core.serve.inbox_command:inbox",
    "describe": "core.describe:describe_command",
    "webhooks": "core.webhook_commands:webhooks",
    "plan": "core.plan:plan",
    "worker": "core.worker.command:worker",
    "validate": "core.validate:validate",
    "report": "core.html_report_command:report",
    "dlq": "core.dlq_command:dlq",
}


def _import_command(target: str) -> click.Command:
    import importlib

    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), target
    return command


@click.group(
    cls=CommandGroup,
    lazy=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="connector")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="log more: -v each batch, -vv each request (also after the command)",
)
@click.option("-q", "--quiet", is_flag=True, help="log only errors (also after the command)")
def cli(verbose: int, quiet: bool) -> None:
    """Keep your systems in sync with Virtuous CRM+, one YAML recipe at a time."""
    global _verbosity
    _verbosity = -1 if quiet else verbose
    _configure_logging(_verbosity)


#: Libraries whose own debug lines would bury ours (httpcore's connection internals; httpx's
#: line per request, which repeats ours without the rate budget): their warnings only.
_QUIETED = ("httpcore", "httpx", "hpack", "urllib3", "asyncio", "multipart")


def _configure_logging(verbose: int) -> None:
    """Log to stderr through the secret filter, so no key reaches a terminal or a log file."""
    levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    level = levels.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, handlers=[_LogHandler()], format="%(message)s", force=True)
    for name in _QUIETED:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


class _LogHandler(logging.Handler):
    """Rich's handler behind the secret filter, built at the first record: most commands log
    nothing, and rich is not worth importing for them. Off a terminal (cron, CI) a record is
    one plain line, with the date, for a log file."""

    @functools.cached_property
    def _rich(self) -> logging.Handler:
        from rich.logging import RichHandler

        from core.http.redact import SecretFilter

        handler: logging.Handler
        if _stderr().is_terminal:
            handler = RichHandler(console=_stderr(), show_path=False, markup=False)
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.addFilter(SecretFilter())
        handler.setLevel(self.level)
        return handler

    def handle(self, record: logging.LogRecord) -> bool:
        return bool(self._rich.handle(record))

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() delegates
        self._rich.emit(record)


@cli.command()
@recipe_argument
@click.option(
    "--dry-run", is_flag=True, help="write nothing: say what a run would do (as `connector plan`)"
)
@click.option("--limit", type=click.IntRange(min=1), help="stop after N source records")
@click.option("--json", "as_json", is_flag=True, help="print one JSON run report on stdout")
@click.option(
    "--wait", is_flag=True, help="when another run of RECIPE is in progress, wait for it to end"
)
@state_option
@pass_session
@reports_errors
def run(
    session: Session,
    recipe_path: Path,
    dry_run: bool,
    limit: int | None,
    as_json: bool,
    wait: bool,
    state_path: str | None,
) -> None:
    """Sync the records of RECIPE's source into its sink."""
    from core import output
    from core.runner import Runner

    recipe = polled(session.recipe(recipe_path))
    runner: Runner | None = None
    try:
        exclusive = _exclusive(recipe, dry_run=dry_run, wait=wait)
        with exclusive, session.state(recipe, state_path) as state:
            runner = Runner(
                recipe, state, dry_run=dry_run, limit=limit, pm=session.pm, wait_for_lock=wait
            )
            with output.progress(runner, enabled=progress_wanted(as_json)):
                report = runner.run()
    except (Exception, KeyboardInterrupt) as error:
        # What the run wrote before it stopped is in the service: its report must still count it,
        # or no report ever will (the next run finds those records unchanged).
        if runner is not None and runner.report.finished_at is not None:
            runner.report.stopped = _stop_reason(error)
            _show_report(runner.report, as_json, hint_target(recipe_path, state_path))
        raise
    exit_with_report(report, as_json, hint_target(recipe_path, state_path))


def polled(recipe: Recipe) -> Recipe:
    """What ``connector run`` reads of a webhook recipe: its ``reconcile:`` poll, once (cron can
    run it between servers' polls); with none, there is nothing to read."""
    from core.webhooks import WebhookSource

    if not issubclass(recipe.source_class, WebhookSource):
        return recipe
    if recipe.reconcile_class is None:
        msg = (
            f"source {recipe.source_class.name} takes webhooks, which connector run cannot read:"
            f" serve them with `connector serve {recipe.path}`, or add reconcile: (a polling"
            " source) for connector run to read"
        )
        raise RecipeValidationError(msg, where=recipe.located.where(("source", "use")))
    click.echo(
        f"{recipe.name}: webhooks are taken by connector serve; this run reads its"
        f" reconcile: source ({recipe.reconcile_class.name}) once",
        err=True,
    )
    return recipe.reconciling()


def _stop_reason(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return redact_text(str(error)) if isinstance(error, ConnectorError) else _unexpected(error)


@cli.command("test")
@recipe_argument
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@pass_session
@reports_errors
def test_recipe(session: Session, recipe_path: Path, as_json: bool) -> None:
    """Run RECIPE's inline tests: each input must map to its expected output."""
    from core import output
    from core.recipe_tests import run_recipe_tests

    recipe = session.recipe(recipe_path, placeholders=True)
    results = run_recipe_tests(recipe)
    output.print_test_results(recipe, results, as_json=as_json)
    # No tests checked nothing: a CI job must not pass a recipe that lost (or never had) them.
    passed = bool(results) and all(r.passed for r in results)
    sys.exit(ExitCode.OK if passed else ExitCode.RECORDS_FAILED)


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@pass_session
@reports_errors
def plugins(session: Session, name: str | None, as_json: bool) -> None:
    """List every source, sink and transform, with the plugin that provides it; with NAME,
    describe that one (as ``connector describe NAME``)."""
    from core import describe

    if name is not None:
        describe.show(session, name, as_json=as_json)
        return
    listing = describe.plugins_listing(session.registry)
    if as_json:
        click.echo(json.dumps(listing, indent=2))
    else:
        click.echo("\n".join(describe.plugins_lines(listing)))
    for failure in session.registry.failures:
        _stderr().print(f"plugin {failure.name} failed to load: {failure.error}", markup=False)


@cli.command()
@pass_session
@reports_errors
def schema(session: Session) -> None:
    """Print a JSON Schema of recipes, for editors' autocompletion."""
    from core.recipe_schema import recipe_json_schema

    click.echo(json.dumps(recipe_json_schema(session.registry), indent=2))


@cli.group(cls=LazyGroup, lazy={"copy": "core.state_copy_command:state_copy"})
def state() -> None:
    """Inspect, reset or copy recipes' cursors, ledgers and dead letters."""


@state.command("show")
@recipe_argument
@state_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@pass_session
@reports_errors
def state_show(session: Session, recipe_path: Path, state_path: str | None, as_json: bool) -> None:
    """Show RECIPE's cursor, ledger counts and dead letters."""
    from core import output

    recipe = session.recipe(recipe_path, placeholders=True)
    with session.state(recipe, state_path) as store:
        output.print_state(recipe.name, store, as_json=as_json)


@state.command("reset")
@recipe_argument
@state_option
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@pass_session
@reports_errors
def state_reset(session: Session, recipe_path: Path, state_path: str | None, yes: bool) -> None:
    """Forget RECIPE's cursor, ledger and dead letters (the next run starts over)."""
    recipe = session.recipe(recipe_path, placeholders=True)
    if not yes and not _confirmed(
        f"Forget everything recipe {recipe.name!r} wrote? Records already in the sink may be"
        " sent again."
    ):
        msg = f"state of {recipe.name} not reset: not confirmed (--yes resets without asking)"
        raise RecipeError(msg)
    with _exclusive(recipe), session.state(recipe, state_path) as store, store.lock(recipe.name):
        store.reset(recipe.name)
    click.echo(f"state of {recipe.name} reset")


def _confirmed(question: str) -> bool:
    """A yes to ``question``; no answer at all (no terminal: cron, CI) is a no."""
    try:
        return click.confirm(question)
    except click.Abort:
        return False


def with_plugin_commands(session: Session) -> click.Group:
    """The command group with the commands plugins add (``connector status``, ...)."""
    session.add_commands(cli)
    return cli


def _without_httpx_command_line() -> None:
    """Keep httpx from importing its own command-line client (``httpx._main``: rich's progress
    bars and syntax colouring, pygments' lexers), about a quarter of ``connector validate``'s
    start-up: httpx imports it whenever click and rich are installed, as they are here, and
    nothing in this process runs httpx's command line. Like httpx without them, ``httpx.main``
    then only says that the client cannot run."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def unavailable() -> None:
        raise SystemExit("connector does not include httpx's command-line client")

    stand_in.main = unavailable  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


def main() -> None:
    """The console script: parse the arguments, then load only what the command needs."""
    startup.begin()  # Session.recipe() ends start-up, startup.end() the process
    try:
        cli(prog_name="connector", obj=Session())
    except RecipeError as error:  # a plugin's command that does not report its own errors
        _fail(str(error), ExitCode.USAGE)
    except ConnectorError as error:
        _fail(str(error), ExitCode.FATAL)
    except Exception as error:  # outside any command (a plugin's command, loading plugins)
        if _verbosity >= 2:
            raise
        _fail(_unexpected(error), ExitCode.FATAL)
    finally:
        startup.end()
