"""The built-in transforms, registered through the same hook a plugin uses."""

from __future__ import annotations

from collections.abc import Mapping

from core.hookspecs import hookimpl
from core.money import parse_money
from core.transforms import Transform, builtin_transforms


@hookimpl
def connector_register_transforms() -> Mapping[str, Transform]:
    return {**builtin_transforms(), "parse_money": parse_money}
