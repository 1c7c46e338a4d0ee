"""Recipe expressions: parsed with ``ast``, checked against a whitelist, emitted as Python source.

An expression is a small, safe subset of Python (described in :mod:`core.mapping`). This module
turns one expression into the text of one Python expression; :mod:`core.mapping` stitches those
into a single function. Nothing here evaluates anything: a recipe can only name the record, call
registered transforms and use operators on values, so there is nothing to escape through.

Record access (``record.a.b``, ``record["a"]``, ``record.items[0]``) is key and index access, never
Python attribute access, and a missing key, a ``None`` parent or an index out of range gives
``None``. ``*`` and ``%`` go through :func:`multiply` and :func:`remainder`, which refuse, before
building it, a value over the limits of :mod:`core.limits` (``'x' * 10000000000``,
``'%2000000000d' % 1``): one record's expression costs at most a bounded value, never minutes or
gigabytes. Static paths are hoisted into locals that every expression of the mapping shares, so
``record.billing_details.name`` is looked up once per record however often the recipe uses it.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from core import limits
from core.transforms import DateOrder

__all__ = [
    "ExpressionError",
    "Scope",
    "emit_constant",
    "emit_expression",
    "multiply",
    "plain_object",
    "remainder",
    "safe_get",
]


class ExpressionError(Exception):
    """An expression is not allowed or not valid; the caller adds the field and the location."""


def safe_get(parent: Any, key: Any) -> Any:
    """``parent[key]`` for mappings and lists, ``None`` when that is missing or makes no sense.

    Generated code inlines the common case (a ``dict`` parent) and calls this for the rest.
    """
    if isinstance(parent, Mapping):
        try:
            return parent.get(key)
        except TypeError:  # an unhashable key, e.g. record.table[record.some_list]
            return None
    if isinstance(parent, list | tuple) and key.__class__ is int:
        try:
            return parent[key]
        except IndexError:
            return None
    return None


def multiply(left: Any, right: Any) -> Any:
    """``left * right``; a repetition or a product over the limits is refused before it is built."""
    if left.__class__ in _SEQUENCES and isinstance(right, int):
        limits.check_length(len(left) * right, f"{_shown(left)} * {right}")
    elif right.__class__ in _SEQUENCES and isinstance(left, int):
        limits.check_length(len(right) * left, f"{left} * {_shown(right)}")
    product = left * right
    # Numbers in a record have at most a few thousand digits (Python reads no more), so their
    # product is cheap to build; checked after, so that it goes no further.
    if isinstance(product, int | Decimal):
        limits.check_number(product, "the product")
    return product


def remainder(left: Any, right: Any) -> Any:
    """``left % right``; text formatting over the length limit is refused before it is built."""
    if left.__class__ is str:
        _check_format(left, right)
    return left % right


def plain_object(value: Any) -> Any:
    """``value``, if every object in it has text keys, as JSON and the sinks need.

    A dict display or a table can build ``{(): 1}`` or ``{1: 'a', 'b': 2}``, which JSON cannot
    hold (nor the payload's digest sort). Only the map values that can build an object are
    checked, so a plain mapping pays nothing.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key in item:
                if key.__class__ is not str:
                    msg = f"the keys of an object must be text, not {type(key).__name__} {key!r}"
                    raise TypeError(msg)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value


_SEQUENCES = frozenset({str, list, tuple})
# printf-style conversions: %[(key)][flags][width][.precision][length]type
_CONVERSION = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<type>.?)",
    re.DOTALL,
)


def _check_format(text: str, args: Any) -> None:
    """Refuse a format whose widths and precisions (written, or taken by ``*``) would build
    text over the length limit: ``'%2000000000d' % 1`` takes seconds and gigabytes."""
    taken = list(args) if isinstance(args, tuple) else [args]
    for arg in taken:
        if isinstance(arg, Decimal):  # '%d' turns it into an int: 1e999999 would take minutes
            limits.check_number(arg, _shown(arg))
    index = 0
    total = len(text)
    for match in _CONVERSION.finditer(text):
        for part in ("width", "precision"):
            written = match.group(part)
            if written == "*":
                star = taken[index] if index < len(taken) else 0
                index += 1
                total += abs(star) if isinstance(star, int) else 0
            elif written:
                total += int(written[:19])  # 19 digits are over any limit already
        if match.group("type") != "%":
            index += 1
    limits.check_length(total, f"the text {_shown(text)} formats")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:27]}..."


_BINARY = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Div: "/",
    ast.FloorDiv: "//",
}
# Operators that can build a value far larger than their operands, checked by a helper first.
_CHECKED = {ast.Mult: "_mul", ast.Mod: "_mod"}
_UNARY = {ast.Not: "not ", ast.USub: "-", ast.UAdd: "+"}
_COMPARE = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
# Constructs refused with a specific explanation; anything else outside the whitelist gets a
# generic one. Checked over the whole tree first, so `(lambda: 1)()` reports the lambda.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.NamedExpr: "an assignment (:=)",
    ast.JoinedStr: "an f-string (use + or join instead)",
    ast.Starred: "a starred argument",
    ast.Set: "a set display",
    ast.Slice: "a slice",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Pow: "the ** operator",
    ast.BitAnd: "the & operator",
    ast.BitXor: "the ^ operator",
    ast.LShift: "the << operator",
    ast.RShift: "the >> operator",
    ast.MatMult: "the @ operator",
    ast.Invert: "the ~ operator",
}
# `is` is only for these; `x is 1` would compare object identity, which is an accident of caching.
_IDENTITIES = (None, True, False)
_SPELLINGS = {"null": "None", "none": "None", "true": "True", "false": "False"}


def _is_dunder(name: str | None) -> bool:
    # Any leading double underscore, not just __x__: nothing legitimate is spelled that way, and
    # record['__x'] still reaches such a key.
    return name is not None and name.startswith("__")


class Scope:
    """What the expressions of one mapping share: the names its generated function may use.

    ``namespace`` becomes the function's globals: only the transforms, tables and constants that
    some expression uses, plus the runtime helpers. ``take_path_lines`` hands out the statements
    that load record paths, in an order where every parent comes before its children.
    """

    def __init__(
        self,
        transforms: Mapping[str, Callable[..., Any]],
        tables: Mapping[str, Mapping[str, Any]] | None,
        day_first: bool | None = None,
    ) -> None:
        self.transforms = transforms
        self.tables = tables or {}
        self.namespace: dict[str, Any] = {}
        self.used: dict[str, Callable[..., Any]] = {}
        self._paths: dict[tuple[str | int, ...], str] = {}
        self._pending: list[str] = []
        #: Set when an expression holds a dict display or looks up a table of objects: its
        #: value may hold an object whose keys are not text (see :func:`plain_object`).
        self.builds_objects = False
        #: The order of day and month the recipe says, or this mapping's dates settle.
        self.dates = DateOrder(day_first)

    def transform(self, name: str) -> str:
        ref = f"_t_{name}"
        self.namespace[ref] = self.used[name] = self.dates.for_run(self.transforms[name])
        return ref

    def table(self, name: str) -> str:
        ref = f"_table_{len(self.namespace)}"
        self.namespace[ref] = self.tables[name]
        return ref

    def constant(self, value: Any) -> str:
        ref = f"_const_{len(self.namespace)}"
        self.namespace[ref] = value
        return ref

    def path(self, keys: tuple[str | int, ...]) -> str:
        """The local variable holding ``record`` followed down ``keys``, defining it if new."""
        if not keys:
            return "_r"
        var = self._paths.get(keys)
        if var is not None:
            return var
        parent, key = self.path(keys[:-1]), keys[-1]
        var = self._paths[keys] = f"_v{len(self._paths)}"
        if parent == "_r":  # the record itself is always a Mapping
            self._pending.append(f"{var} = _r.get({key!r})")
        elif isinstance(key, str):
            # The inline dict test saves a helper call on the common path; _get covers the rest.
            self._pending.append(
                f"{var} = {parent}.get({key!r}) if {parent}.__class__ is _dict "
                f"else _get({parent}, {key!r})"
            )
        else:
            self._pending.append(f"{var} = _get({parent}, {key!r})")
        return var

    @property
    def paths(self) -> list[tuple[str | int, ...]]:
        """Every fixed record path the expressions read so far, parents before children."""
        return list(self._paths)

    def take_path_lines(self) -> list[str]:
        lines, self._pending = self._pending, []
        return lines


def emit_constant(value: Any, scope: Scope) -> str:
    """Python source for a YAML scalar used as a constant."""
    # Exact types only: a subclass's repr (an IntEnum's, say) need not be a Python literal.
    if value is None or value.__class__ in (bool, int, str):
        return repr(value)
    if value.__class__ is float and math.isfinite(value):
        return repr(value)
    if isinstance(value, int | float | str | Decimal | date):  # also nan, datetime
        return scope.constant(value)
    msg = (
        f"a {type(value).__name__} cannot be a constant here; "
        "use text, a number, true/false or null"
    )
    raise ExpressionError(msg)


def emit_expression(text: str, scope: Scope) -> str:
    """Python source for one recipe expression, or ``ExpressionError`` saying what is wrong."""
    if not text.strip():
        msg = "empty expression; write \"''\" for empty text or null for no value"
        raise ExpressionError(msg)
    tree, source = _parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            _check_literal(node, node.value, source)
        name = (
            getattr(node, "id", None) or getattr(node, "attr", None) or getattr(node, "arg", None)
        )
        if _is_dunder(name):
            msg = f"{text!r} uses a dunder name, which is not allowed"
            raise ExpressionError(msg)
        what = _REFUSED.get(type(node))
        if what:
            msg = f"{text!r} uses {what}, which is not allowed in a recipe expression"
            raise ExpressionError(msg)
    try:
        return _Emitter(text, scope).emit(tree.body)
    except RecursionError:
        msg = f"{text!r} is too deeply nested"
        raise ExpressionError(msg) from None


def _check_literal(node: ast.Constant, value: int, source: str) -> None:
    """Refuse an integer literal over the digit limit (``0xfff...`` of 4,000 digits), which
    nothing could write back out: Python refuses to print an integer of over 4,300 digits."""
    try:
        limits.check_number(value, "")
    except ValueError:
        written = ast.get_source_segment(source, node) or "an integer"
        raise ExpressionError(str(limits.too_large(limits.quote_number(written)))) from None


def _parse(text: str) -> tuple[ast.Expression, str]:
    """The expression's tree, and the source its positions refer to."""
    source = text.strip()
    if not _is_text(source):
        msg = f"{text!r} holds text that is not Unicode (half of a surrogate pair)"
        raise ExpressionError(msg)
    try:
        try:
            return ast.parse(source, mode="eval"), source
        except SyntaxError:
            if "\n" not in source:
                raise
        # A YAML block scalar spreads a long expression over lines; inside brackets that is
        # valid Python, and the whitelist below judges the result the same either way.
        try:
            wrapped = f"(\n{source}\n)"
            return ast.parse(wrapped, mode="eval"), wrapped
        except SyntaxError:
            return ast.parse(source, mode="eval"), source  # report the error as the recipe has it
    except SyntaxError as error:
        hint = " (imports are not allowed)" if source.split()[0] in ("import", "from") else ""
        # Python gives offset 0 when the expression stops short ("record.a +").
        where = f"column {error.offset}" if error.offset else "the end"
        if "\n" in source:
            where = f"line {error.lineno} {where}"
        msg = f"{text!r} is not a valid expression: {error.msg} at {where}{hint}"
        raise ExpressionError(msg) from None
    except (RecursionError, MemoryError):
        msg = f"{text!r} is too deeply nested"
        raise ExpressionError(msg) from None
    except ValueError:
        msg = f"{text!r} contains a null character"
        raise ExpressionError(msg) from None


def _is_text(source: str) -> bool:
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Emitter:
    """Walks one checked tree and writes fully parenthesised Python, so precedence never shifts."""

    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope

    def fail(self, problem: str) -> ExpressionError:
        return ExpressionError(f"{self.text!r}: {problem}")

    def emit(self, node: ast.expr) -> str:
        match node:
            case ast.Constant(value=value):
                if value is ... or isinstance(value, bytes | complex):
                    msg = f"{type(value).__name__} literals are not allowed"
                    raise self.fail(msg)
                return emit_constant(value, self.scope)
            case ast.Name(id="record"):
                return "_r"
            case ast.Name(id=name):
                raise self._unknown_name(name)
            case ast.Attribute() | ast.Subscript():
                return self._access(node)
            case ast.BinOp(left=left, op=ast.BitOr(), right=right):
                return self._pipe(left, right)
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
                return f"({self.emit(left)} {_BINARY[type(op)]} {self.emit(right)})"
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _CHECKED:
                return f"{_CHECKED[type(op)]}({self.emit(left)}, {self.emit(right)})"
            case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
                return f"({_UNARY[type(op)]}{self.emit(operand)})"
            case ast.BoolOp(op=op, values=values):
                joiner = " and " if isinstance(op, ast.And) else " or "
                return f"({joiner.join(self.emit(value) for value in values)})"
            case ast.Compare():
                return self._compare(node)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return f"({self.emit(body)} if {self.emit(test)} else {self.emit(orelse)})"
            case ast.List(elts=elts):
                return f"[{', '.join(self.emit(e) for e in elts)}]"
            case ast.Tuple(elts=elts):
                return f"({''.join(self.emit(e) + ', ' for e in elts)})"
            case ast.Dict(keys=keys, values=values):
                if any(key is None for key in keys):
                    raise self.fail("** inside a dict display is not allowed")
                self.scope.builds_objects = True
                pairs = (
                    f"{self.emit(k)}: {self.emit(v)}"
                    for k, v in zip(keys, values, strict=True)
                    if k is not None  # ruled out above; this tells the type checker
                )
                return f"{{{', '.join(pairs)}}}"
            case ast.Call(func=ast.Name(id=name), args=args, keywords=keywords):
                return self._call(name, None, args, keywords)
            case ast.Call(func=func):
                root = func
                while isinstance(root, ast.Attribute | ast.Subscript):
                    root = root.value
                if isinstance(root, ast.Name) and root.id != "record":
                    raise self._unknown_name(root.id)  # os.system(...): say what `os` is not
                msg = (
                    f"only transforms can be called, and {ast.unparse(func)!r} is not a transform "
                    "name (record fields are data, not methods)"
                )
                raise self.fail(msg)
        msg = f"{type(node).__name__} is not allowed in a recipe expression"
        raise self.fail(msg)

    def _unknown_name(self, name: str) -> ExpressionError:
        if name in self.scope.transforms:
            return self.fail(
                f"the transform {name!r} must be piped or called: "
                f"`value | {name}` or `{name}(value)`"
            )
        hint = (
            f"did you mean {_SPELLINGS[name.lower()]}?"
            if name.lower() in _SPELLINGS
            else (f"to write the text {name!r}, quote it inside the YAML string: \"'{name}'\"")
        )
        return self.fail(
            f"unknown name {name!r}; an expression can use `record`, transforms and literals "
            f"({hint})"
        )

    def _access(self, node: ast.Attribute | ast.Subscript) -> str:
        steps: list[ast.Attribute | ast.Subscript] = []
        root: ast.expr = node
        while isinstance(root, ast.Attribute | ast.Subscript):
            steps.append(root)
            root = root.value
        steps.reverse()
        if isinstance(root, ast.Name) and root.id == "record":
            static: list[str | int] = []
            while steps and (key := _static_key(steps[0])) is not None:
                static.append(key)
                steps.pop(0)
            code = self.scope.path(tuple(static))
        else:
            code = self.emit(root)
            if any(isinstance(step, ast.Attribute) for step in steps):
                raise self.fail(
                    "`.name` access works only on record paths such as record.a.b; "
                    "use ['name'] to index other values"
                )
        for step in steps:
            key = repr(step.attr) if isinstance(step, ast.Attribute) else self.emit(step.slice)
            code = f"_get({code}, {key})"
        return code

    def _pipe(self, left: ast.expr, right: ast.expr) -> str:
        match right:
            case ast.Name(id=name) if name != "record":
                return self._call(name, self.emit(left), [], [])
            case ast.Call(func=ast.Name(id=name), args=args, keywords=keywords):
                return self._call(name, self.emit(left), args, keywords)
        msg = (
            f"the right side of '|' must be a transform, as in `| upper` or `| default('x')`, "
            f"not {ast.unparse(right)!r} ('|' is only the pipe)"
        )
        raise self.fail(msg)

    def _call(
        self, name: str, piped: str | None, args: list[ast.expr], keywords: list[ast.keyword]
    ) -> str:
        transforms = self.scope.transforms
        if name not in transforms:
            known = ", ".join(sorted(transforms)) or "(none)"
            import difflib  # here: a misspelt transform is rare, and start-up is paid each time

            close = difflib.get_close_matches(name, transforms, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"unknown transform {name!r}; known: {known}{hint}"
            raise self.fail(msg)
        if any(keyword.arg is None for keyword in keywords):
            raise self.fail("** arguments are not allowed")
        positional = [piped] if piped is not None else []
        table_at = None
        if name == "lookup":
            table_at = self._table_argument(args, keywords, offset=len(positional))
        positional += [self.emit(arg) if arg is not table_at else self._table(arg) for arg in args]
        named = [
            (keyword.arg or "", self._table(keyword.value))
            if keyword.value is table_at
            else (keyword.arg or "", self.emit(keyword.value))
            for keyword in keywords
        ]
        self._check_arity(name, len(positional), [keyword for keyword, _ in named])
        arguments = positional + [f"{keyword}={code}" for keyword, code in named]
        return f"{self.scope.transform(name)}({', '.join(arguments)})"

    def _table_argument(
        self, args: list[ast.expr], keywords: list[ast.keyword], offset: int
    ) -> ast.expr | None:
        """The node naming lookup()'s table: the second positional argument or ``table=``."""
        for keyword in keywords:
            if keyword.arg == "table":
                return keyword.value
        index = 1 - offset
        return args[index] if 0 <= index < len(args) else None

    def _table(self, node: ast.expr) -> str:
        known = ", ".join(sorted(self.scope.tables)) or "(none declared)"
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            msg = f"lookup's table must be a quoted table name; known tables: {known}"
            raise self.fail(msg)
        if node.value not in self.scope.tables:
            msg = f"unknown table {node.value!r}; known tables: {known}"
            raise self.fail(msg)
        table = self.scope.tables[node.value]
        if not isinstance(table, Mapping):
            msg = f"table {node.value!r} must map keys to values"
            raise self.fail(msg)
        if any(isinstance(value, Mapping | list) for value in table.values()):
            self.scope.builds_objects = True
        return self.scope.table(node.value)

    def _check_arity(self, name: str, positional: int, keywords: list[str]) -> None:
        try:
            signature = inspect.signature(self.scope.transforms[name])
        except (TypeError, ValueError):  # some callables have no introspectable signature
            return
        try:
            signature.bind(*range(positional), **dict.fromkeys(keywords))
        except TypeError as error:
            plain = (str(p.replace(annotation=p.empty)) for p in signature.parameters.values())
            msg = f"{name}: {error}; {name} takes ({', '.join(plain)})"
            raise self.fail(msg) from None

    def _compare(self, node: ast.Compare) -> str:
        operands = [node.left, *node.comparators]
        parts = [self.emit(node.left)]
        for index, (op, right) in enumerate(zip(node.ops, node.comparators, strict=True)):
            sides = (operands[index], right)
            if isinstance(op, ast.Is | ast.IsNot) and not (
                any(_is_identity(side) for side in sides)
                and not any(
                    isinstance(side, ast.Constant) and not _is_identity(side) for side in sides
                )
            ):
                msg = "'is' only compares with None, True or False; use == for values"
                raise self.fail(msg)
            parts += [_COMPARE[type(op)], self.emit(right)]
        return f"({' '.join(parts)})"


def _is_identity(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and any(node.value is c for c in _IDENTITIES)


def _static_key(step: ast.Attribute | ast.Subscript) -> str | int | None:
    """The key of a record-path step if it is fixed (``.a``, ``["a"]``, ``[0]``, ``[-1]``)."""
    if isinstance(step, ast.Attribute):
        return step.attr
    key = step.slice
    if isinstance(key, ast.Constant) and isinstance(key.value, str | int):
        return None if isinstance(key.value, bool) else key.value
    if (
        isinstance(key, ast.UnaryOp)
        and isinstance(key.op, ast.USub)
        and isinstance(key.operand, ast.Constant)
        and key.operand.value.__class__ is int
    ):
        return -int(key.operand.value)
    return None
