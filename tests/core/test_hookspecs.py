"""The plugin API stays honest: every hook is documented, with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import core
from core import hookspecs

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
HOOKS = [name for name in dir(hookspecs) if name.startswith("connector_")]


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_in_the_readme_with_its_signature(name: str) -> None:
    parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"`{name}({parameters})`" in README


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docstring(name: str) -> None:
    assert (getattr(hookspecs, name).__doc__ or "").strip()


def test_the_plugin_api_exports_what_it_lists() -> None:
    assert sorted(core.__all__) == core.__all__
    for name in core.__all__:
        assert hasattr(core, name)
