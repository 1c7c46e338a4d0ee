"""The sandbox's own folder: copies of the recipes it runs, their outputs, the state, ``.env``.

A recipe's relative paths resolve against its folder, so each recipe runs from a copy of its
folder: inputs are found where the recipe expects them, and outputs (``exports/``), state and
locks land in the sandbox's folder, never in the checkout.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from core.errors import RecipeError

#: Files above this size are linked, not copied: inputs too big to copy for a trial run.
COPY_LIMIT = 1 << 20
#: A recipe's folder with more files than this is not copied (a home folder, a checkout).
MAX_FILES = 2000
# A recipe's own state, its secrets, and folders no recipe reads.
_SKIPPED = frozenset({"__pycache__", "node_modules", ".venv", "venv"})


def recipe_copies(recipes: Iterable[Path], workspace: Path) -> list[Path]:
    """Each recipe's path inside a copy of its folder under ``workspace``; one copy a folder."""
    folders: dict[Path, Path] = {}
    copies = []
    for recipe in recipes:
        folder = recipe.resolve().parent
        if folder not in folders:
            folders[folder] = workspace / f"{len(folders) + 1}-{folder.name or 'root'}"
            _mirror(folder, folders[folder])
        copies.append(folders[folder] / recipe.name)
    return copies


def _mirror(source: Path, target: Path) -> None:
    copied = 0
    for here, dirs, files in os.walk(source):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in _SKIPPED and not _holds(Path(here) / d, target)
        ]
        into = target / Path(here).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.startswith("."):  # .env holds real secrets; the sandbox sets its own
                continue
            copied += 1
            if copied > MAX_FILES:
                msg = (
                    f"{source} holds more than {MAX_FILES} files, too many to copy for a sandbox"
                    " run: move the recipe and the files it reads into a folder of their own"
                )
                raise RecipeError(msg, where="--run")
            original = Path(here) / name
            if original.stat().st_size > COPY_LIMIT:
                (into / name).symlink_to(original)
            else:
                shutil.copy2(original, into / name)


def _holds(folder: Path, target: Path) -> bool:
    """Whether ``folder`` is or holds ``target`` (the sandbox's folder inside the recipe's)."""
    return folder.resolve() == target.resolve() or folder.resolve() in target.resolve().parents


def write_env(path: Path, variables: Mapping[str, str]) -> None:
    """``export NAME=value`` lines: a shell sources them, and ``.env`` readers accept them."""
    lines = [f"export {name}={_quoted(value)}\n" for name, value in variables.items()]
    path.write_text("".join(lines), encoding="utf-8")


def _quoted(value: str) -> str:
    safe = value and all(c.isalnum() or c in "-_./:@" for c in value)
    return value if safe else "'" + value.replace("'", "'\\''") + "'"


@contextmanager
def environment_set(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment, put back as they were on leaving."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
