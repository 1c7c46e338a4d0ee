"""Safe YAML loading that remembers where every value came from (line and column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import RecipeSyntaxError

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """A parsed document and the ``file:line:column`` of each key path in it."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_) -> str:
        """``file:line:column`` of ``path``, or of its nearest located parent."""
        probe = tuple(path)
        while probe not in self.marks and probe:
            probe = probe[:-1]
        line, column = self.marks.get(probe, (1, 1))
        return f"{self.file}:{line}:{column}"


def load_located(text: str, file: str) -> Located:
    """Parse ``text`` with the safe loader, recording a mark for every mapping key and item."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise _syntax_error(error, file) from None
    located = Located(file, None)
    if node is not None:
        located.data = _build(node, (), located.marks, yaml.SafeLoader(""), file)
    return located


def load_located_file(path: Path) -> Located:
    return load_located(path.read_text(encoding="utf-8"), str(path))


def _build(
    node: yaml.Node, path: Path_, marks: dict[Path_, tuple[int, int]], loader: Any, file: str
) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                msg = f"duplicate key {key!r}"
                raise RecipeSyntaxError(msg, where=f"{file}:{line}:{column}")
            result[key] = _build(value_node, (*path, key), marks, loader, file)
            marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), marks, loader, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _syntax_error(error: yaml.YAMLError, file: str) -> RecipeSyntaxError:
    mark = getattr(error, "problem_mark", None)
    where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return RecipeSyntaxError(message, where=where)
