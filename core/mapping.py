"""The mapping compiler: a recipe's ``map:`` and ``filter:`` become one Python function.

Expressions are a safe subset of Python, read with ``ast`` (see :mod:`core.expressions`):

* ``record`` is the input; ``record.a.b``, ``record["a"]`` and ``record.items[0]`` are key and
  index access, and anything missing along the way gives ``None``;
* literals (``'Stripe'``, ``42``, ``1.5``, ``True``, ``None``), list, tuple and dict displays;
* ``+ - * / // %`` and unary ``-``, comparisons (``==``, ``<``, ``in``, ``is None``, ...),
  ``and``/``or``/``not``, and ``a if condition else b``;
* transforms, called (``coalesce(record.a, record.b)``) or piped (``record.name | strip | upper``,
  ``record.amount | minor_to_major(record.currency)`` meaning ``minor_to_major(amount, currency)``).
  ``|`` is only the pipe.

Everything else (dunders, other names, lambdas, comprehensions, f-strings, calls of anything but a
transform) is refused when the recipe is loaded, with the field, the expression and its location.
In ``map:``, a YAML string is an expression and any other scalar is a constant.

Why compile: rendering templates field by field costs microseconds per field, while one generated
function that looks each record path up once costs about what a hand-written mapping does (see
``bench/mapping.py``). The generated source is kept on :attr:`CompiledMapping.source`.
"""

from __future__ import annotations

import enum
import itertools
import linecache
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from types import CodeType
from typing import Any, Final, Literal

from core.errors import MappingError, RecipeValidationError
from core.expressions import (
    ExpressionError,
    Scope,
    emit_constant,
    emit_expression,
    multiply,
    plain_object,
    remainder,
    safe_get,
)
from core.record_paths import MissingPaths
from core.record_paths import Path as RecordPath
from core.transforms import Transform

__all__ = ["FILTERED", "CompiledMapping", "compile_mapping"]

Locate = Callable[[tuple[str | int, ...]], str | None]


class _Filtered(enum.Enum):
    FILTERED = "FILTERED"

    def __repr__(self) -> str:
        return "FILTERED"

    __str__ = __repr__


FILTERED: Final = _Filtered.FILTERED
"""Returned instead of a payload when the recipe's ``filter:`` is falsy for the record."""

# What a transform or an operator raises on a bad value. Anything else (a bug, KeyboardInterrupt,
# a RetriableError from a transform that calls out) passes through untouched.
_VALUE_ERRORS: Final = (
    ValueError,
    TypeError,
    ArithmeticError,  # includes decimal.InvalidOperation
    LookupError,
    AttributeError,
    MappingError,
    MemoryError,  # a last resort: every operator and transform bounds what it builds
)
_names = itertools.count()


class CompiledMapping:
    """One recipe's ``filter:`` and ``map:``, compiled. Call it with a record.

    Returns the mapped payload (a new ``dict``), or :data:`FILTERED` when the filter rejects the
    record; raises :class:`~core.errors.MappingError` naming the output field when a value cannot
    be mapped. ``function`` is the generated function itself, for loops that want to skip a call.
    ``filter_paths`` and ``map_paths`` are the fixed record paths the filter and the map read.
    """

    __slots__ = ("filter_paths", "function", "map_paths", "read_at", "source")

    def __init__(
        self,
        function: Callable[[Mapping[str, Any]], Any],
        source: str,
        filter_paths: Sequence[RecordPath] = (),
        map_paths: Sequence[RecordPath] = (),
        read_at: Mapping[RecordPath, tuple[str | int, ...]] | None = None,
    ) -> None:
        self.function = function
        self.source = source
        self.filter_paths = tuple(filter_paths)
        self.map_paths = tuple(map_paths)
        #: The recipe path (``("map", "contact", "email")``) that first reads each record path.
        self.read_at = dict(read_at or {})

    def missing_paths(
        self, known: Collection[RecordPath] = frozenset(), locate: Locate = lambda path: None
    ) -> MissingPaths:
        """A fresh watch for the record paths this mapping reads that no record holds; ``known``
        paths are left out, and ``locate`` names where in the recipe each is read."""
        where = {}
        for read, at in self.read_at.items():
            location = locate(at)
            field = ".".join(map(str, at))
            where[read] = f"{location}: {field}" if location else field
        return MissingPaths(self.filter_paths, self.map_paths, known, where)

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any] | Literal[_Filtered.FILTERED]:
        result: dict[str, Any] | Literal[_Filtered.FILTERED] = self.function(record)
        return result

    def __repr__(self) -> str:
        return f"<CompiledMapping {self.function.__code__.co_filename}>"


def compile_mapping(
    map_block: Mapping[str, Any],
    *,
    filter_expr: str | None = None,
    transforms: Mapping[str, Transform],
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    locate: Locate = lambda path: None,
    day_first: bool | None = None,
) -> CompiledMapping:
    """Compile ``map:`` (nested mappings and lists of expressions) and ``filter:`` to one function.

    ``transforms`` are the names expressions may call; ``tables`` are the recipe's ``tables:``,
    which ``lookup`` names. ``locate`` turns a recipe path such as ``("map", "amount")`` into
    ``"recipe.yaml:12:11"`` for error messages. ``day_first`` is the recipe's order of day and
    month for dates that read two ways (see :class:`~core.transforms.DateOrder`). Raises
    :class:`~core.errors.RecipeValidationError` for anything not allowed or not valid.
    """
    if not isinstance(map_block, Mapping):
        msg = (
            f"map must be a mapping of output fields to expressions, not {type(map_block).__name__}"
        )
        raise RecipeValidationError(msg, where=locate(("map",)))
    scope = Scope(transforms, tables, day_first)
    writer = _Writer(scope, locate)
    filter_line = ""
    if filter_expr:
        filter_code = writer.leaf(filter_expr, ("filter",))
        filter_line = f"if not {filter_code}: return _FILTERED"
    filter_paths = scope.take_path_lines()
    read_by_filter = scope.paths
    body = writer.value(map_block, ("map",))
    lines = [
        "def _mapping(_r):",
        "    try:",
        *(f"        {line}" for line in filter_paths),
    ]
    attributions: dict[int, tuple[str | None, str]] = {}
    if filter_line:
        lines.append(f"        {filter_line}  # filter: {_comment(str(filter_expr))}")
        attributions[len(lines)] = (None, str(filter_expr))
    lines += (f"        {line}" for line in scope.take_path_lines())
    body[-1] = ("}", None)  # the closing "}," would make the return value a tuple
    for index, (text, blame) in enumerate(body):
        prefix = "return " if index == 0 else ""
        lines.append(f"        {prefix}{text}")
        if blame is not None:
            attributions[len(lines)] = blame
    lines += ["    except _VALUE_ERRORS as _e:", "        raise _fail(_e) from _e", ""]
    source = "\n".join(lines)
    filename = f"<connector mapping {next(_names)}>"
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "_dict": dict,
        "_get": safe_get,
        "_mul": multiply,
        "_mod": remainder,
        "_plain": plain_object,
        "_FILTERED": FILTERED,
        "_VALUE_ERRORS": _VALUE_ERRORS,
        **scope.namespace,
    }
    try:
        code_object = compile(source, filename, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        # Only reachable for absurd nesting; every part of the source was checked on the way in.
        msg = f"map could not be compiled (is it nested hundreds deep?): {error}"
        raise RecipeValidationError(msg, where=locate(("map",))) from None
    exec(code_object, namespace)  # noqa: S102 - the source is generated from checked trees
    function = namespace["_mapping"]
    # Registered so a --debug traceback shows the generated line that failed; dropped with it.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    weakref.finalize(function, linecache.cache.pop, filename, None)
    names = {fn.__code__: name for name, fn in scope.used.items() if hasattr(fn, "__code__")}
    code = function.__code__

    def fail(error: Exception) -> MappingError:
        return _explain(error, code, attributions, names)

    namespace["_fail"] = fail
    read_by_map = [path for path in scope.paths if path not in read_by_filter]
    return CompiledMapping(function, source, read_by_filter, read_by_map, writer.read_at)


class _Writer:
    """Compiles the values of ``map:`` into lines of a dict display, each leaf on its own line.

    One leaf per line is what lets a runtime error name its field: the traceback's line number in
    the generated function points straight at the leaf, so no per-field bookkeeping runs per record.
    """

    def __init__(self, scope: Scope, locate: Locate) -> None:
        self.scope = scope
        self.locate = locate
        #: Each record path, and the recipe path (``("map", "email")``) that first reads it.
        self.read_at: dict[RecordPath, tuple[str | int, ...]] = {}

    def leaf(self, value: Any, path: tuple[str | int, ...]) -> str:
        """Source for a leaf: text is an expression, any other scalar a constant."""
        before = len(self.scope.paths)
        try:
            if isinstance(value, str):
                code = emit_expression(value, self.scope)
            else:
                code = emit_constant(value, self.scope)
        except ExpressionError as error:
            raise self._error(str(error), path) from None
        for read in self.scope.paths[before:]:
            self.read_at.setdefault(read, path)
        return code

    def output(self, value: str, path: tuple[str | int, ...]) -> str:
        """Source for a map leaf: :meth:`leaf`, checked to be JSON when it may build an object."""
        self.scope.builds_objects = False
        code = self.leaf(value, path)
        return f"_plain({code})" if self.scope.builds_objects else code

    def value(
        self, value: Any, path: tuple[str | int, ...]
    ) -> list[tuple[str, tuple[str | None, str] | None]]:
        """Lines of source for ``value``, each with the (field, expression) it computes."""
        field = ".".join(str(part) for part in path[1:])
        if isinstance(value, str):
            comment = _comment(f"{_label(path)}: {value}")
            return [(f"{self.output(value, path)},  # {comment}", (field, value))]
        if isinstance(value, Mapping):
            lines: list[tuple[str, tuple[str | None, str] | None]] = [("{", None)]
            for key, item in value.items():
                if not isinstance(key, str):
                    msg = (
                        f"field names must be text, not {type(key).__name__} {key!r} "
                        "(quote it in the YAML)"
                    )
                    raise self._error(msg, path)
                nested = self.value(item, (*path, key))
                lines.append((f"    {key!r}: {nested[0][0]}", nested[0][1]))
                lines += ((f"    {text}", blame) for text, blame in nested[1:])
            return [*lines, ("},", None)]
        if isinstance(value, list):
            lines = [("[", None)]
            for index, item in enumerate(value):
                lines += (
                    (f"    {text}", blame) for text, blame in self.value(item, (*path, index))
                )
            return [*lines, ("],", None)]
        return [(f"{self.leaf(value, path)},", None)]

    def _error(self, problem: str, path: tuple[str | int, ...]) -> RecipeValidationError:
        return RecipeValidationError(f"{_label(path)}: {problem}", where=self.locate(path))


def _label(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment(text: str) -> str:
    """``text`` made safe to end a generated line with: field names and expressions come from the
    recipe, and a line break in one would let it write code."""
    return _one_line("".join(char if char.isprintable() else " " for char in text))


def _explain(
    error: Exception,
    code: CodeType,
    attributions: Mapping[int, tuple[str | None, str]],
    names: Mapping[CodeType, str],
) -> MappingError:
    """Turn an exception raised inside the generated function into a MappingError for its field.

    Runs only when a record fails, so it can afford to walk the traceback: the generated frame's
    line number gives the field, the frame below it (if any) the transform that refused the value.
    """
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    field, text = attributions.get(tb.tb_lineno if tb else -1, (None, None))
    if isinstance(error, MappingError):
        return MappingError(error.message, field=error.field or field)
    culprit = tb.tb_next.tb_frame.f_code if tb is not None and tb.tb_next is not None else None
    transform = names.get(culprit) if culprit is not None else None
    problem = str(error) or type(error).__name__
    if isinstance(error, KeyError):
        problem = f"no key {problem}"
    if len(problem) > 200:
        problem = f"{problem[:197]}..."
    if transform:
        problem = f"{transform}: {problem}"
    if text is not None:
        problem = f"{problem} (in {_one_line(text)!r})"
    if field is None and text is not None:
        problem = f"filter: {problem}"
    return MappingError(problem, field=field)
