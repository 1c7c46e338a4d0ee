"""The docs keep up with the code: every transform, hook and recipe key is documented, and the
transforms' examples in docs/transforms.md run and give what they say."""

from __future__ import annotations

import doctest
import inspect
import re
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Union

import pytest
from pydantic import BaseModel

from core import hookspecs
from core.recipe_model import RecipeModel

DOCS = Path(__file__).resolve().parents[1] / "docs"
TRANSFORMS = (DOCS / "transforms.md").read_text(encoding="utf-8")
PLUGINS = (DOCS / "plugins.md").read_text(encoding="utf-8")
RECIPES = (DOCS / "recipes.md").read_text(encoding="utf-8")
HOOKS = [name for name in dir(hookspecs) if name.startswith("connector_")]


def _sections(text: str) -> dict[str, str]:
    """``### `name` `` headings and the text under each."""
    parts = re.split(r"^### `([^`]+)`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_transform_has_a_section_with_an_example(registry) -> None:
    sections = _sections(TRANSFORMS)
    undocumented = [name for name in registry.transforms.names() if name not in sections]
    assert undocumented == [], "add each to docs/transforms.md, with an example"
    without_example = [
        name
        for name in registry.transforms.names()
        if not re.search(rf"^>>> .*\b{name}\(", sections[name], re.M)
    ]
    assert without_example == []


def _blocks(text: str) -> Iterator[str]:
    yield from re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_transforms_examples_give_what_they_show(registry) -> None:
    names = {name: registry.transforms.get(name) for name in registry.transforms.names()}
    runner = doctest.DocTestRunner(verbose=False)
    parser = doctest.DocTestParser()
    for number, block in enumerate(_blocks(TRANSFORMS)):
        globs = {**names, "Decimal": Decimal}
        runner.run(parser.get_doctest(block, globs, f"example {number}", "transforms.md", 0))
    failed, tried = runner.summarize(verbose=False)
    assert tried > len(names)
    assert failed == 0, "an example in docs/transforms.md no longer holds (see above)"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_in_the_plugin_guide_with_its_signature(name: str) -> None:
    parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"`{name}({parameters})`" in PLUGINS


def _models(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """The models inside an annotation, and whether each is the item of a list."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        for argument in arguments:
            yield from _models(argument)
    elif origin is list and arguments:
        yield from ((model, True) for model, _ in _models(arguments[0]))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False


def _keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        yield key
        for inner, listed in _models(info.annotation):
            yield from _keys(inner, f"{key}[]." if listed else f"{key}.")


RECIPE_KEYS = sorted(set(_keys(RecipeModel)))


@pytest.mark.parametrize("key", RECIPE_KEYS)
def test_every_recipe_key_is_in_the_recipe_guide(key: str) -> None:
    top, _, _ = key.partition(".")
    assert f"### `{top.removesuffix('[]')}`" in RECIPES
    assert f"`{key}`" in RECIPES
