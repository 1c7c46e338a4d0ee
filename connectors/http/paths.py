"""Dotted paths into JSON bodies: ``links.next``, ``meta.total``, ``data.0.id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def dig(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``; ``None`` when any step is missing. ``""`` is ``data``.

    A step that is a whole number indexes a list (``items.0``); anything else is a key.
    """
    if not path:
        return data
    current = data
    for step in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(step)
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            index = int(step)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current
