"""Hostile input never ends in a traceback or a hang: the standing suite of issue 9.

Whatever a file, a recipe or an expression holds, the outcome is one of the project's own: a dead
letter naming the record and the cause, or exit 2 (the recipe) or 3 (the run) with one line. Each
property runs a fixed number of derandomized examples (the same ones on every run), each inside
a time bound, so a failure reproduces exactly::

    .venv/bin/pytest -q tests/core/test_hostile_input.py

``CONNECTOR_SOAK=1`` multiplies the examples by 20 for a longer soak.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.files.common import FileSourceSettings
from connectors.files.csv_file import CsvSource, CsvSourceSettings
from connectors.files.jsonl_file import JsonlSource
from core.context import Context
from core.errors import InputError, MappingError, RecipeError, RecipeValidationError
from core.json_numbers import JsonNumber, to_json
from core.mapping import FILTERED, compile_mapping
from core.outcomes import Outcome
from core.recipe import load_recipe
from core.registry import Registry
from core.runner import payload_digest
from core.source import Source, Unreadable
from core.state import Batch, DeadLetter, open_state
from core.transforms import builtin_transforms

SOAK = 20 if os.environ.get("CONNECTOR_SOAK") == "1" else 1
pytestmark = pytest.mark.timeout(120 * SOAK)
#: Seconds one example may take on a busy machine; a hang (1e999999 took 34 s) is far over.
BOUND = 3.0


def hostile(examples: int) -> Callable[..., Any]:
    """Hypothesis settings for this suite: derandomized, no example database, ``examples`` each."""
    return settings(
        max_examples=examples * SOAK,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


@contextmanager
def within(bound: float = BOUND) -> Iterator[None]:
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"took {elapsed:.1f} s"


# --- the pieces hostile input is made of ----------------------------------------------------------

HUGE_HEX = "0x" + "f" * 4000
NUMBERS = [
    "0", "-1", "2500", "1e999999", "1e-999999", "1E+999999999", "9" * 4400, "9" * 41,
    "1.000000000000000000000000000001", "-0.0", "1e400", "NaN", "Infinity", HUGE_HEX,
]  # fmt: skip
TEXTS = [
    "", " ", "x", "Zoë", "🎁", "\\udc80", "\\ud800\\udc00", "\\u0000", "%*d", "%2000000000d",
    "%(a)s", "%.2000000000f", "${X}", "$$", "'", '"', "\\", "\t", "\r", "\x85", "\u2028", "\ufeff",
    "a,b", "a;b", "\n",
]  # fmt: skip
TOKENS = [
    *NUMBERS, *TEXTS, "[" * 600, "{" * 600, "]", "}", "null", "true", ":", ",", "-", "? ", "&a ",
    "*a", "<<: *a", "!!float ", "!!binary ", "!!python/object:os.system ", "!!timestamp ",
    "2025-13-45", "---", "...", "#", "|", ">", "%YAML 1.1", "\x00", "\x07", "\x1b", "\x7f",
]  # fmt: skip
BYTES = [b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xb3\x80", b"\x00", b"\xef\xbb\xbf"]

tokens = st.sampled_from(TOKENS).map(str.encode)
mutation = st.tuples(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["insert", "delete", "repeat", "replace"]),
    # Mostly text: a byte that is not UTF-8 stops the load at once, and says little more.
    st.integers(0, 11).flatmap(
        lambda n: st.one_of(st.sampled_from(BYTES), st.binary(max_size=6)) if n == 0 else tokens
    ),
)


def mutate(text: bytes, mutations: list[tuple[int, str, bytes]]) -> bytes:
    for at, how, piece in mutations:
        at %= len(text) + 1
        if how == "insert":
            text = text[:at] + piece + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + len(piece) * 3 :]
        elif how == "repeat":
            text = text[:at] + text[at : at + 40] * 3 + text[at:]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text


# --- the recipe loader ----------------------------------------------------------------------------

RECIPE = b"""version: 1
name: hostile
description: every part a recipe can have
source:
  use: file.jsonl
  with: &source {path: in.jsonl, key: id}
filter: record.status != 'failed' and record.amount > 0
map:
  transactionId: record.id
  amount: record.amount | minor_to_major(record.currency)
  note: "'%s gave %d' % (record.name, record.amount)"
  fund: record.fund | lookup('funds', 'GENERAL')
  tags: [record.a, "record.b * 2", {k: record.c}]
  when: record.created | unix_to_date
sink:
  use: file.jsonl
  with: {path: out.jsonl, batch_size: 50}
tables:
  funds: {general: GEN, "1": ONE, day: 2025-01-01}
tests:
  - input: {id: a, amount: 2500, currency: usd, created: 0, tags: [1, 2.5, null, 0x1f]}
    expect: {transactionId: a}
"""


@hostile(examples=1000)
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_a_mutated_recipe_loads_or_is_refused_as_a_recipe_error(
    registry: Registry, tmp_path: Path, mutations: list[tuple[int, str, bytes]]
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(mutate(RECIPE, mutations))
    with within(), suppress(RecipeError):
        load_recipe(path, registry, env={"X": "1"})


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))
    yield path


BASE = yaml.safe_load(RECIPE)
LEAVES = sorted(leaf_paths(BASE), key=repr)


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``value`` with ``new`` at ``path``; unchanged when an earlier change removed the path."""
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict) and head in value:
        return {**value, head: replaced(value[head], tuple(rest), new)}
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        return [*value[:head], replaced(value[head], tuple(rest), new), *value[head + 1 :]]
    return value


# --- expressions ----------------------------------------------------------------------------------

PATHS = ["record.a", "record.n", "record.x", "record['x']", "record.items[0]", "record.d.k"]
LITERALS = [
    *NUMBERS[:9], "10000000000", "3000000000", "2000000000", HUGE_HEX, "()", "[]", "{}", "None",
    "True", *(repr(text) for text in TEXTS[:14]), "'usd'", "'%Y-%m-%d'", "'t'",
]  # fmt: skip
TRANSFORMS = sorted(builtin_transforms())
OPERATORS = ["+", "-", "*", "/", "//", "%", "<", "==", "in"]


def expressions() -> st.SearchStrategy[str]:
    leaves = st.sampled_from(PATHS + LITERALS)

    def compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(OPERATORS), inner)
            .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(TRANSFORMS), st.lists(inner, max_size=3))
            .map(lambda t: f"{t[0]}({', '.join(t[1])})"),
            st.tuples(inner, st.sampled_from(TRANSFORMS), st.lists(inner, max_size=2))
            .map(lambda t: f"{t[0]} | {t[1]}({', '.join(t[2])})"),
            st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
            st.lists(inner, min_size=1, max_size=3).map(lambda items: f"({', '.join(items)},)"),
            st.lists(st.tuples(inner, inner), max_size=2)
            .map(lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            inner.map(lambda e: f"(not {e})"),
            inner.map(lambda e: f"(-{e})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        )  # fmt: skip

    grammar = st.recursive(leaves, compose, max_leaves=8)
    noise = st.text(alphabet=st.sampled_from(list("record.()[]{}'\"|*%+-,:0123456789 _a\\")))
    return st.one_of(grammar, grammar, grammar, noise)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**60), max_value=10**60),
        st.sampled_from([10**4000, -(10**4299)]),
        st.sampled_from(NUMBERS[:9]).map(lambda n: JsonNumber(n) if n.isascii() else n),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(TEXTS).map(lambda t: t.encode().decode("unicode_escape", "replace")),
        st.sampled_from(["x" * 1_000_000, "%2000000000d"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
records = st.fixed_dictionaries(
    {},
    optional={key: json_values for key in ["a", "n", "x", "items", "d", "currency", "amount"]},
)


@hostile(examples=1500)
@given(expression=expressions(), record=records)
def test_an_expression_compiles_and_maps_or_is_refused_as_ours(
    expression: str, record: dict[str, Any]
) -> None:
    tables = {"t": {"k": {1: "not text"}, "x": "X"}}
    with within():
        try:
            mapping = compile_mapping(
                {"out": expression}, transforms=builtin_transforms(), tables=tables
            )
        except RecipeValidationError:
            return
        try:
            payload = mapping(record)
        except MappingError:
            return
        assert payload is not FILTERED
        # What the runner and the sinks do next with it must not fail either.
        payload_digest(payload)
        to_json(payload, sort_keys=True, ensure_ascii=True)


@hostile(examples=400)
@given(expression=expressions(), record=records)
def test_a_filter_decides_or_is_refused_as_ours(expression: str, record: dict[str, Any]) -> None:
    with within():
        try:
            mapping = compile_mapping(
                {}, filter_expr=expression, transforms=builtin_transforms(), tables={"t": {}}
            )
        except RecipeValidationError:
            return
        with suppress(MappingError):
            mapping(record)


@hostile(examples=1000)
@given(
    changes=st.lists(
        st.tuples(
            st.sampled_from(LEAVES),
            st.one_of(
                expressions(),
                st.sampled_from(TOKENS),
                st.sampled_from([None, True, 0, -1, 10**40, 1.5, [], {}, ["x"], {"a": "b"}]),
            ),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_recipe_with_hostile_values_loads_or_is_refused_as_a_recipe_error(
    registry: Registry, tmp_path: Path, changes: list[tuple[tuple[Any, ...], Any]]
) -> None:
    data = BASE
    for path, value in changes:
        data = replaced(data, path, value)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=False), encoding="utf-8")
    with within(), suppress(RecipeError):
        load_recipe(path, registry, env={"X": "1"})


# --- the CSV and JSONL readers --------------------------------------------------------------------


def jsonl_lines() -> st.SearchStrategy[bytes]:
    good = st.dictionaries(st.sampled_from(["id", "amount", "name"]), json_values, max_size=3).map(
        lambda record: to_json({"id": "r", **record}, ensure_ascii=True).encode()
    )
    tokens = st.lists(
        st.one_of(st.sampled_from(TOKENS).map(str.encode), st.sampled_from(BYTES)), max_size=4
    ).map(b"".join)
    return st.one_of(good, good, tokens, st.binary(max_size=30))


def csv_lines() -> st.SearchStrategy[bytes]:
    cell = st.one_of(
        st.sampled_from([*NUMBERS, *TEXTS, '"', '"a""b"', '"open', "x" * 200_000]).map(str.encode),
        st.binary(max_size=6),
    )
    return st.lists(cell, max_size=4).map(b",".join)


def read_all(source: Source) -> list[Any]:
    """What the runner asks of a source for each record it yields: its key and digest."""
    read = []
    for item in source.read(None):
        if not isinstance(item, Unreadable):
            source.key(item)
            payload_digest(item)
            to_json(item).encode("utf-8")  # a JSONL sink writes it, SQLite stores it
        read.append(item)
    return read


def source_over(kind: str, tmp_path: Path, lines: list[bytes]) -> Source:
    path = tmp_path / f"in.{kind}"
    header = [b"id,amount,name"] if kind == "csv" else []
    path.write_bytes(b"\n".join(header + lines) + b"\n")
    context = Context("hostile", tmp_path, state=None)  # type: ignore[arg-type]
    if kind == "csv":
        return CsvSource(CsvSourceSettings(path=path.name), context)
    return JsonlSource(FileSourceSettings(path=path.name), context)


@hostile(examples=600)
@given(lines=st.lists(jsonl_lines(), max_size=8))
def test_the_jsonl_reader_yields_records_or_dead_letters(
    tmp_path: Path, lines: list[bytes]
) -> None:
    with within():
        try:
            read_all(source_over("jsonl", tmp_path, lines))
        except InputError:  # not UTF-8: the whole file is in another encoding
            return


@hostile(examples=800)
@given(lines=st.lists(csv_lines(), max_size=8))
def test_the_csv_reader_yields_records_or_dead_letters(tmp_path: Path, lines: list[bytes]) -> None:
    with within():
        try:
            read_all(source_over("csv", tmp_path, lines))
        except InputError:
            return


def test_a_dead_letter_holding_any_text_is_committed_and_read_back_unchanged(
    tmp_path: Path,
) -> None:
    # A lone surrogate is valid in JSON text but not in UTF-8: SQLite refused the whole commit.
    record = {"id": "g2", "note": "\udc80 Zoë 🎁", "\ud800": [JsonNumber("1.50")]}
    store = open_state(tmp_path / "state.db")
    try:
        letter = DeadLetter("g2", Outcome.INVALID, "x: not a number", "x", record)
        store.commit("hostile", Batch(dead_letters=[letter]))
        (read,) = store.dead_letters("hostile")
    finally:
        store.close()
    assert read.record == record
    assert str(read.record["\ud800"][0]) == "1.50"


# --- whole runs through the command line ----------------------------------------------------------


def hostile_files(kind: str, count: int, seed: int) -> Iterator[bytes]:
    """``count`` seeded files of good records with hostile lines among them."""
    rng = random.Random(seed)
    pieces = [*TOKENS, "x" * 200_000, '"open', "\\udc80", "[" * 5000, "9" * 4400]
    for number in range(count):
        lines = []
        for index in range(rng.randint(3, 12)):
            if rng.random() < 0.6:
                amount = rng.choice(["2500", "1e999999", "9" * 50, "-3", "0.5", '"12"'])
                good = f'{{"id": "r{number}-{index}", "amount": {amount}, "currency": "usd"}}'
                if kind == "csv":
                    plain = amount.strip('"')
                    good = f"r{number}-{index},{plain},usd"
                lines.append(good.encode())
            else:
                hostile_piece = rng.choice(pieces).encode()
                hostile_piece += rng.choice(BYTES) if rng.random() < 0.2 else b""
                lines.append(hostile_piece * rng.randint(1, 3))
        header = b"id,amount,currency\n" if kind == "csv" else b""
        yield header + b"\n".join(lines) + b"\n"


RUN_RECIPE = """
version: 1
name: hostile-{kind}-{number}
source: {{use: file.{kind}, with: {{path: in.{kind}, key: id}}}}
map:
  id: record.id
  amount: record.amount | to_int | minor_to_major(record.currency)
  currency: record.currency | upper
  note: "'*' * (record.amount | to_int) if record.id == 'r0-0' else record.note"
sink: {{use: file.jsonl, with: {{path: out.jsonl}}}}
"""


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_runs_over_hostile_files_end_in_a_report_never_a_traceback(
    kind: str, tmp_path: Path, invoke: Callable[..., Result]
) -> None:
    files = list(hostile_files(kind, 30 * SOAK, seed=9))
    reports = 0
    for number, content in enumerate(files):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / f"in.{kind}").write_bytes(content)
        recipe = folder / "recipe.yaml"
        recipe.write_text(RUN_RECIPE.format(kind=kind, number=number))
        with within(10):
            first = invoke("run", recipe, "--json")
            again = invoke("run", recipe, "--json")
        for result in (first, again):
            said = result.output + (result.stderr or "")
            assert "Traceback" not in said, said[-2000:]
            assert "unexpected" not in said, said[-2000:]
            assert result.exit_code in (0, 1, 3), said[-2000:]
        if first.exit_code == 3:  # not UTF-8: one line naming the line and the encoding
            assert "is not utf-8-sig text" in first.stderr
            continue
        report, rerun = json.loads(first.stdout), json.loads(again.stdout)
        assert sum(report["outcomes"].values()) == report["records_read"]
        # A re-run makes progress: what was written stays written, nothing is sent twice.
        assert rerun["outcomes"]["written"] == 0
        assert rerun["outcomes"]["unchanged"] == report["outcomes"]["written"]
        reports += report["outcomes"]["invalid"] > 0 and report["outcomes"]["written"] > 0
    # Most files mix good and hostile records: both kinds reached the end of the run.
    assert reports > len(files) // 2


def test_huge_money_in_a_run_is_summed_exactly(
    tmp_path: Path, invoke: Callable[..., Result]
) -> None:
    amounts = ["12345678901234567890123456789012345", "12345678901234567890123456789012345", "1"]
    # a note each: a field the recipe reads that no record has would make the run exit 1
    lines = [
        f'{{"id": "m{i}", "amount": {a}, "currency": "usd", "note": null}}'
        for i, a in enumerate(amounts)
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RUN_RECIPE.format(kind="jsonl", number=0))
    result = invoke("run", recipe, "--json")
    assert result.exit_code == 0, result.output
    # 33 digits: the default decimal context would round it to 28
    assert json.loads(result.stdout)["money"] == {"USD": "246913578024691357802469135780246.91"}
