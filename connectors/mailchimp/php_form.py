"""Form-encoded bodies with PHP-style bracket keys, as Mailchimp's webhooks send them.

``type=profile&data[merges][FNAME]=Ada&data[merges][ADDRESS][city]=London`` reads as::

    {"type": "profile", "data": {"merges": {"FNAME": "Ada", "ADDRESS": {"city": "London"}}}}

``a[]=x&a[]=y`` appends to a list, and a level whose keys are exactly ``0, 1, ... n-1``
(``GROUPINGS[0][name]``) is a list too. A later value for the same key replaces an earlier one,
as PHP does; a key whose brackets do not close (``a[b``) is taken as written. (The qs-codec
package does the same and more; this is the part Mailchimp needs, without a dependency.)
:func:`encode` writes such bodies, for the emulator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

#: Nesting beyond this is refused: no real delivery comes near it, and a hostile body could.
MAX_DEPTH = 16

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")

Form = dict[str, Any]


def decode(body: bytes | str) -> Form:
    """The nested fields of a form-encoded body; ValueError if it is not UTF-8 or nests too
    deep."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    root: Form = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        _put(root, _path(key), value)
    return {k: _lists(v) if isinstance(v, dict) else v for k, v in root.items()}


def _path(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None:
        return [key]
    path = [match.group(1), *_PART.findall(match.group(2))]
    if len(path) > MAX_DEPTH:
        msg = f"form field {key[:80]!r} nests deeper than {MAX_DEPTH} levels"
        raise ValueError(msg)
    return path


def _put(node: Form, path: list[str], value: str) -> None:
    *parents, last = path
    for part in parents:
        part = part if part else str(_next_index(node))
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last if last else str(_next_index(node))] = value


def _next_index(node: Form) -> int:
    """Where ``[]`` appends: after the largest number already used as a key (PHP's rule)."""
    numbers = [int(k) for k in node if k.isdigit()]
    return max(numbers) + 1 if numbers else 0


def _lists(node: Form) -> Any:
    items = {k: _lists(v) if isinstance(v, dict) else v for k, v in node.items()}
    if items and list(items) == [str(i) for i in range(len(items))]:
        return list(items.values())
    return items


def encode(data: Mapping[str, Any]) -> str:
    """``data`` as a form body with bracket keys: the inverse of :func:`decode`."""
    pairs: list[tuple[str, str]] = []
    _flatten(data, "", pairs)
    return urlencode(pairs)


def _flatten(value: Any, prefix: str, pairs: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}[{key}]" if prefix else str(key), pairs)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}[{index}]", pairs)
    else:
        pairs.append((prefix, "" if value is None else str(value)))
