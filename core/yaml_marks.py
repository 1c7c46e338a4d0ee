"""Safe YAML loading that remembers where every value came from (line and column).

Anchors and aliases work, including ``<<`` merge keys, but an alias may not contain itself and
aliases may not expand to more than :data:`ALIAS_EXPANSION_LIMIT` values: a few hundred bytes
of nested aliases (a "billion laughs") would otherwise take minutes and gigabytes to load.
Whatever the text holds (a NUL, a date that is no date, a number of 4,000 digits, lists nested
thousands deep), the error is a :class:`~core.errors.RecipeError` naming its line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core import limits
from core.errors import RecipeError, RecipeSyntaxError, RecipeValidationError

Path_ = tuple[str | int, ...]

#: How many values aliases may add to a document; sharing a block takes dozens.
ALIAS_EXPANSION_LIMIT = 10_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


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
    _check_flow_depth(text, file)
    return _located_by_libyaml(text, file) or _located(text, file)


def _located(text: str, file: str) -> Located:
    """The pure-Python parser's reading of ``text``: the one whose errors users see."""
    located = Located(file, None)
    try:
        loader = _Loader(text)  # the reader refuses a NUL or a control character here
    except yaml.reader.ReaderError as error:
        raise _unreadable(error, text, file) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            located.data = _Builder(loader, located).build(node, ())
    except yaml.YAMLError as error:
        raise _syntax_error(error, file) from None
    except RecursionError:
        raise _too_deep(file) from None
    finally:
        loader.dispose()
    return located


def load_located_file(path: Path) -> Located:
    return load_located(path.read_text(encoding="utf-8"), str(path))


def _located_by_libyaml(text: str, file: str) -> Located | None:
    """``text`` parsed by libyaml (a tenth of the pure-Python parser's time), composed and built
    as :func:`_located` does; None for a character the pure-Python reader refuses and for
    whatever libyaml or the builder refuses, so that :func:`_located` says what is wrong, in
    the words and at the line it always did."""
    if not _LIBYAML or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    located = Located(file, None)
    loader = _CLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            located.data = _Builder(loader, located).build(node, ())
    except (yaml.YAMLError, RecipeError, RecursionError):
        return None
    finally:
        loader.dispose()
    return located


class _AliasMarks(yaml.composer.Composer):
    """Composing that remembers where each alias is used: the composer forgets it. The parser
    it is mixed with, pure Python or libyaml, provides the events."""

    aliases: dict[tuple[int, int], tuple[str, Any]]

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)  # type: ignore[attr-defined]
        if alias and parent is not None and index is not None:
            event: yaml.AliasEvent = self.peek_event()  # type: ignore[attr-defined]
            if event.start_mark is not None:
                self.aliases[_slot(parent, index)] = (str(event.anchor), event.start_mark)
        return super().compose_node(parent, index)


class _Loader(_AliasMarks, yaml.SafeLoader):
    """The safe loader, pure Python."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        #: (id of the parent node, id of the key node or the item index) -> (anchor, mark)
        self.aliases = {}


#: PyYAML built without libyaml has no CSafeLoader: then every text takes the pure-Python path.
_LIBYAML: bool = yaml.__with_libyaml__
_CSafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CLoader(_AliasMarks, _CSafeLoader):  # type: ignore[misc]
    """libyaml's scanner and parser under the pure-Python composer (which, as its events come
    in, marks the aliases), constructor and resolver."""

    def __init__(self, text: str) -> None:
        _CSafeLoader.__init__(self, text)  # the composer's own __init__ is not in its chain
        self.anchors = {}
        self.aliases = {}


def _slot(parent: yaml.Node, index: Any) -> tuple[int, int]:
    return id(parent), index if isinstance(index, int) else id(index)


class _Builder:
    """Turns composed nodes into Python values, expanding aliases within the limits."""

    def __init__(self, loader: _Loader, located: Located) -> None:
        self.loader = loader
        self.file = located.file
        self.marks = located.marks
        self.building: set[int] = set()  # the nodes being built: their ancestors, and them
        self.built: set[int] = set()
        self.copies = 0  # values built again because an alias repeats them
        self.alias: tuple[str, yaml.Mark] | None = None  # the outermost alias being expanded

    def build(
        self, node: yaml.Node, path: Path_, alias: tuple[str, yaml.Mark] | None = None
    ) -> Any:
        self.marks[path] = _position(alias[1] if alias else node.start_mark)
        if len(path) > limits.current().depth:
            raise _too_deep(self._where(node.start_mark))
        outer = self.alias
        self.alias = outer or alias
        try:
            self._count(node, alias)
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), self._alias_at(node, i))
                    for i, item in enumerate(node.value)
                ]
            return self._scalar(node)
        finally:
            self.alias = outer
            self.building.discard(id(node))

    def _count(self, node: yaml.Node, alias: tuple[str, yaml.Mark] | None) -> None:
        if id(node) in self.building:
            assert alias is not None  # only an alias can lead back to a node being built
            msg = (
                f"*{alias[0]} is inside &{alias[0]}, the value it stands for;"
                " a value cannot contain itself"
            )
            raise RecipeValidationError(msg, where=self._where(alias[1]))
        if id(node) in self.built:
            self.copies += 1
            if self.copies > ALIAS_EXPANSION_LIMIT:
                name, mark = self.alias or ("", node.start_mark)
                msg = (
                    f"aliases expand to more than {ALIAS_EXPANSION_LIMIT:,} values (at *{name});"
                    " write the shared part out, or use fewer aliases"
                )
                raise RecipeValidationError(msg, where=self._where(mark))
        self.built.add(id(node))
        if not isinstance(node, yaml.ScalarNode):
            self.building.add(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        here = self.marks[path]
        result: dict[Any, Any] = {}
        pairs = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                result.update(self._merged(node, key_node, value_node, path))
        explicit: set[Any] = set()
        for key_node, value_node in pairs:
            key = self._key(key_node)
            if key in explicit:
                msg = f"duplicate key {key!r}"
                raise RecipeSyntaxError(msg, where=self._where(key_node.start_mark))
            explicit.add(key)
            result[key] = self.build(value_node, (*path, key), self._alias_at(node, key_node))
            self.marks[(*path, key)] = _position(key_node.start_mark)
        self.marks[path] = here
        return result

    def _merged(
        self, node: yaml.MappingNode, key_node: yaml.Node, value_node: yaml.Node, path: Path_
    ) -> dict[Any, Any]:
        """The mappings a ``<<`` key merges in; earlier ones win, explicit keys win over all."""
        sources = [(value_node, self._alias_at(node, key_node))]
        if isinstance(value_node, yaml.SequenceNode):
            sources = [
                (item, self._alias_at(value_node, i)) for i, item in enumerate(value_node.value)
            ]
        merged: dict[Any, Any] = {}
        for source, alias in reversed(sources):
            value = self.build(source, path, alias)
            if not isinstance(value, dict):
                msg = "<< merges a mapping, or a list of mappings, into this one"
                raise RecipeValidationError(msg, where=self._where(key_node.start_mark))
            merged.update(value)
        return merged

    def _key(self, key_node: yaml.Node) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            msg = "a key must be text or a number, not a list or a mapping"
            raise RecipeValidationError(msg, where=self._where(key_node.start_mark))
        return self._scalar(key_node)

    def _scalar(self, node: yaml.Node) -> Any:
        """A scalar's value; one its tag cannot read (``2025-13-45``) is refused where it is."""
        text = str(node.value)
        if node.tag == _INT_TAG and len(text) > limits.current().digits + 2:
            # Python takes seconds over, or refuses, an integer of thousands of digits.
            raise RecipeValidationError(
                str(limits.too_large(limits.quote_number(text))), where=self._where(node.start_mark)
            )
        try:
            value = self.loader.construct_object(node, deep=True)
            if value.__class__ is int:
                limits.check_number(value, limits.quote_number(text))
        except yaml.YAMLError:
            raise
        # An explicit tag skips the resolver that vouches for the text: `!!timestamp x` fails
        # inside PyYAML with whatever its parsing code meets (AttributeError, ValueError, ...).
        except Exception as error:  # noqa: BLE001
            if str(error).startswith(limits.quote_number(text)):
                raise RecipeValidationError(
                    str(error), where=self._where(node.start_mark)
                ) from None
            kind = _KINDS.get(node.tag, node.tag)
            shown = text if len(text) <= 40 else f"{text[:37]}..."
            msg = f"cannot read {shown if kind == 'a date' else repr(shown)} as {kind}"
            if isinstance(error, ValueError | OverflowError):  # else PyYAML's own trouble
                msg = f"{msg}: {error}"
            raise RecipeValidationError(msg, where=self._where(node.start_mark)) from None
        return value

    def _alias_at(self, parent: yaml.Node, index: Any) -> tuple[str, yaml.Mark] | None:
        return self.loader.aliases.get(_slot(parent, index))

    def _where(self, mark: yaml.Mark) -> str:
        line, column = _position(mark)
        return f"{self.file}:{line}:{column}"


def _position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


_INT_TAG = "tag:yaml.org,2002:int"
_KINDS = {
    _INT_TAG: "an integer",
    "tag:yaml.org,2002:float": "a float",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:binary": "base64 bytes",
}


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse brackets nested past the depth limit before PyYAML reads them: its scanner takes
    time that grows with the square of their depth (a second for 1,800 ``[``).

    Brackets inside quoted text count too; a recipe would need a hundred unclosed ones there
    to be refused by mistake.
    """
    deepest = limits.current().depth
    if text.count("[") + text.count("{") <= deepest:
        return
    depth = 0
    for bracket in _BRACKETS.finditer(text):
        depth = depth + 1 if bracket.group() in "[{" else max(depth - 1, 0)
        if depth > deepest:
            at = bracket.start()
            where = f"{file}:{text.count(chr(10), 0, at) + 1}:{at - text.rfind(chr(10), 0, at)}"
            raise _too_deep(where)


_BRACKETS = re.compile(r"[\[\]{}]")


def _too_deep(where: str) -> RecipeValidationError:
    depth = limits.current()
    msg = f"the recipe is nested more than {depth.depth} deep ({depth.variable('depth')})"
    return RecipeValidationError(msg, where=where)


def _unreadable(error: yaml.reader.ReaderError, text: str, file: str) -> RecipeSyntaxError:
    """A character YAML does not allow in a document (NUL, most control characters)."""
    position = error.position
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = chr(error.character) if isinstance(error.character, int) else error.character
    msg = f"invalid YAML: the character {character!r} is not allowed ({error.reason})"
    return RecipeSyntaxError(msg, where=f"{file}:{line}:{column}")


def _syntax_error(error: yaml.YAMLError, file: str) -> RecipeSyntaxError:
    mark = getattr(error, "problem_mark", None)
    where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return RecipeSyntaxError(message, where=where)
