"""``connector init``: start a recipe from one of the shipped ones.

The templates are the recipes in the checkout's ``recipes/`` folder (``CONNECTOR_RECIPES`` names
another), so a recipe added there is offered at once. A template is written with the input files
its ``with:`` settings name (``data/donations.csv``), and an ``.env.example`` naming each
variable it reads, so ``connector test`` passes at once and ``connector validate`` once the
variables are set.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from core.cli import ExitCode, reports_errors
from core.env import references
from core.errors import RecipeError, UnknownComponentError

RECIPES_VARIABLE = "CONNECTOR_RECIPES"
ENV_EXAMPLE = ".env.example"


@dataclass(frozen=True)
class Template:
    """A shipped recipe offered by ``connector init``."""

    name: str
    path: Path
    description: str

    def variables(self) -> dict[str, str | None]:
        """Each ``${VAR}`` the recipe reads, with its default (None: it must be set)."""
        return references(_without_comments(self.path.read_text("utf-8")))

    def source_use(self) -> str | None:
        """The name of the source the recipe reads (``source: use:``)."""
        source = parsed_yaml(self.path).get("source")
        use = source.get("use") if isinstance(source, dict) else None
        return use if isinstance(use, str) else None

    def inputs(self) -> list[Path]:
        """The files beside the recipe that its settings name by a relative path: an input
        file (``data/donations.csv``), the paired recipe of a ``two_way:`` sync."""
        data = parsed_yaml(self.path)
        settings = {k: v for k, v in data.items() if k not in _EXPRESSIONS}
        found = []
        for value in _strings(settings):
            if "$" in value or Path(value).is_absolute() or "\n" in value:
                continue
            candidate = self.path.parent / value
            if candidate.is_file() and self.path.parent.resolve() in candidate.resolve().parents:
                found.append(Path(value))
        return list(dict.fromkeys(found))


# Keys whose strings are expressions or data, never a file's name.
_EXPRESSIONS = frozenset({"name", "description", "filter", "map", "tables", "tests"})


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)
    elif isinstance(data, str):
        yield data


def recipes_folder() -> Path:
    """Where the shipped recipes are: ``CONNECTOR_RECIPES``, the checkout's ``recipes/``, or
    where ``pip install .`` put them (the package ``connector_recipes``, see setup.py)."""
    chosen = os.environ.get(RECIPES_VARIABLE)
    if chosen:
        return Path(chosen)
    checkout = Path(__file__).resolve().parents[1] / "recipes"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("connector_recipes")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else checkout


def templates(folder: Path | None = None) -> dict[str, Template]:
    """Every shipped recipe by name (its file name without ``.yaml``), sorted."""
    folder = folder or recipes_folder()
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        description = str(parsed_yaml(path).get("description") or "").strip()
        found[path.stem] = Template(path.stem, path, description)
    return found


def parsed_yaml(path: Path) -> dict[str, Any]:
    """The mapping a YAML file holds; empty when it cannot be read or is no mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@click.command()
@click.argument("template", required=False)
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    show_default=".",
    help="where to write the recipe, its inputs and .env.example",
)
@click.option("--force", is_flag=True, help="overwrite a recipe or input file already there")
@reports_errors
def init(template: str | None, folder: Path, force: bool) -> None:
    """Start a recipe from a template: without TEMPLATE, list them."""
    offered = templates()
    if template is None:
        _list(offered)
        return
    if template.endswith(".yaml"):
        template = template[: -len(".yaml")]
    if template not in offered:
        raise UnknownComponentError("template", template, offered, where="connector init")
    chosen = offered[template]
    written = _write(chosen, folder, force)
    _next_steps(chosen, folder, written)


def _list(offered: dict[str, Template]) -> None:
    if not offered:
        click.echo(f"no templates in {recipes_folder()} (set {RECIPES_VARIABLE})", err=True)
        sys.exit(ExitCode.USAGE)
    click.echo("Templates (connector init NAME [--dir D]):\n")
    for template in offered.values():
        click.echo(template.name)
        if template.description:
            click.echo(f"  {template.description}")


def _write(template: Template, folder: Path, force: bool) -> list[Path]:
    recipe = folder / template.path.name
    files = [(template.path, recipe)] + [
        (template.path.parent / p, folder / p) for p in template.inputs()
    ]
    existing = [str(target) for _, target in files if target.exists()]
    if existing and not force:
        msg = f"{', '.join(existing)} already exists; choose another --dir, or add --force"
        raise RecipeError(msg, where="connector init")
    for source, target in files:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for _, target in files:
        if target.suffix == ".yaml":  # the recipe, and a paired one
            _write_env_example(folder / ENV_EXAMPLE, Template(target.stem, target, ""))
    return [target for _, target in files] + [folder / ENV_EXAMPLE]


def _write_env_example(path: Path, template: Template) -> None:
    """Add the template's variables that ``path`` does not name yet (it may serve others)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    named = set(re.findall(r"^#? ?([A-Za-z_][A-Za-z0-9_]*)=", text, re.M))
    lines = [
        f"{name}=" if default is None else f"# {name}={default}"
        for name, default in template.variables().items()
        if name not in named
    ]
    if not lines and text:
        return
    header = (
        ""
        if text
        else (
            "# Copy to .env beside the recipe and fill in; never commit .env.\n"
            "# `connector sandbox` prints values that point at local emulators.\n"
            "# A commented line has a default (shown); uncomment it to change it.\n"
        )
    )
    intro = f"\n# {template.path.name}" + ("\n" if lines else ": reads no variable\n")
    path.write_text(text + header + intro + "".join(f"{line}\n" for line in lines), "utf-8")


def _next_steps(template: Template, folder: Path, written: list[Path]) -> None:
    recipe = folder / template.path.name
    click.echo("wrote " + ", ".join(str(p) for p in written))
    name = parsed_yaml(template.path).get("name", template.name)
    real = (
        f"  connector webhooks register {recipe} --url https://YOUR-HOST/hooks/{name}\n"
        f"  connector serve {recipe}"
        if _takes_webhooks(template)
        else f"  connector run {recipe}"
    )
    click.echo(
        "\nNext: its inline tests (no secrets needed), a run against local emulators, then\n"
        "your own keys in .env and a real run:\n\n"
        f"  connector test {recipe}\n"
        f"  connector sandbox --run {recipe}\n"
        f"  cp {folder / ENV_EXAMPLE} {folder / '.env'}\n" + real
    )


def _takes_webhooks(template: Template) -> bool:
    """Whether the recipe's source takes webhooks (served by ``connector serve``, not run)."""
    from core.plugins import load_plugins
    from core.webhooks import WebhookSource

    use = template.source_use()
    sources = load_plugins()[1].sources
    if use is None or use not in sources.names():
        return False
    found = sources.get(use)
    return isinstance(found, type) and issubclass(found, WebhookSource)
