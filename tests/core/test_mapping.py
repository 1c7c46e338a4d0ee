from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import MappingError, RecipeValidationError
from core.mapping import FILTERED, CompiledMapping, compile_mapping
from core.transforms import builtin_transforms

CHARGE: dict[str, Any] = {
    "id": "ch_1",
    "amount": 2500,
    "currency": "usd",
    "created": 1735689600,
    "status": "succeeded",
    "billing_details": {"name": "Ada Lovelace", "email": "ada@example.org"},
    "metadata": {"designation": "general"},
    "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}],
}


def compile_(
    map_block: Mapping[str, Any], filter_expr: str | None = None, **kwargs: Any
) -> CompiledMapping:
    return compile_mapping(
        map_block, filter_expr=filter_expr, transforms=builtin_transforms(), **kwargs
    )


def map_one(expression: Any, record: Mapping[str, Any] = CHARGE, **kwargs: Any) -> Any:
    return compile_({"out": expression}, **kwargs)(record)["out"]


# --- what a mapping produces -----------------------------------------------------------------


def test_the_design_recipe_maps_a_stripe_charge() -> None:
    mapping = compile_(
        {
            "transactionSource": "'Stripe'",
            "transactionId": "record.id",
            "amount": "record.amount | minor_to_major(record.currency)",
            "currencyCode": "record.currency | upper",
            "giftDate": "record.created | unix_to_date",
            "giftType": "'Credit'",
            "contact": {
                "firstname": "record.billing_details.name | first_name",
                "lastname": "record.billing_details.name | last_name",
                "email": "record.billing_details.email",
            },
        },
        filter_expr='record.status == "succeeded"',
    )
    assert mapping(CHARGE) == {
        "transactionSource": "Stripe",
        "transactionId": "ch_1",
        "amount": Decimal("25.00"),
        "currencyCode": "USD",
        "giftDate": "2025-01-01",
        "giftType": "Credit",
        "contact": {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org"},
    }
    assert mapping({**CHARGE, "status": "failed"}) is FILTERED


def test_nested_objects_and_lists() -> None:
    mapping = compile_(
        {
            "gift": {"amount": "record.amount", "meta": {"fund": "record.metadata.designation"}},
            "designations": [
                {"code": "record.items[0].sku", "quantity": "record.items[0].qty"},
                {"code": "record.items[1].sku", "quantity": 5},
            ],
            "tags": ["'stripe'", "record.currency"],
        }
    )
    assert mapping(CHARGE) == {
        "gift": {"amount": 2500, "meta": {"fund": "general"}},
        "designations": [{"code": "A", "quantity": 2}, {"code": "B", "quantity": 5}],
        "tags": ["stripe", "usd"],
    }


def test_each_call_builds_new_containers() -> None:
    mapping = compile_({"contact": {"tags": ["'a'"]}})
    first, second = mapping(CHARGE), mapping(CHARGE)
    assert first == second
    assert first["contact"] is not second["contact"]
    assert first["contact"]["tags"] is not second["contact"]["tags"]


def test_an_empty_map_gives_an_empty_payload() -> None:
    assert compile_({})(CHARGE) == {}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("record.nope", None),
        ("record.nope.deeper", None),
        ("record.billing_details.nope", None),
        ("record.id.nope", None),  # a text parent has no keys
        ("record.items[5]", None),
        ("record.items[5].sku", None),
        ("record.items[-1].sku", "B"),
        ("record['billing_details']['email']", "ada@example.org"),
        ("record.items[0]['sku']", "A"),
        ("record.metadata[record.nope]", None),
        ("record.items[record.nope]", None),
        ("record.metadata[record.items]", None),  # an unhashable key is just missing
        ("record", CHARGE),
    ],
)
def test_record_access_is_key_access_and_missing_is_none(expression: str, expected: Any) -> None:
    assert map_one(expression) == expected


def test_a_none_parent_gives_none() -> None:
    record = {"billing_details": None, "items": None}
    assert map_one("record.billing_details.name", record) is None
    assert map_one("record.items[0].sku", record) is None


def test_record_access_never_reaches_python_attributes() -> None:
    # `items` and `get` are dict methods; here they are keys, and absent ones are None.
    assert map_one("record.get", {"a": 1}) is None
    assert map_one("record.items", {"items": 3}) == 3
    assert map_one("record.keys", {"a": 1}) is None


def test_record_can_be_any_mapping() -> None:
    class Record(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            return {"a": {"b": 1}}[key]

        def __iter__(self) -> Any:
            return iter(["a"])

        def __len__(self) -> int:
            return 1

    assert map_one("record.a.b", Record()) == 1
    assert map_one("record.x.b", Record()) is None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("record.currency | upper", "USD"),
        ("record.billing_details.name | strip | upper", "ADA LOVELACE"),
        ("record.amount | minor_to_major(record.currency)", Decimal("25.00")),
        ("record.amount | minor_to_major(currency=record.currency)", Decimal("25.00")),
        ("minor_to_major(record.amount, record.currency)", Decimal("25.00")),
        ("record.nope | default('none given')", "none given"),
        ("record.nope | default(record.id) | upper", "CH_1"),
        ("coalesce(record.nope, '', record.id)", "ch_1"),
        ("[record.billing_details.name, record.id] | join(' / ')", "Ada Lovelace / ch_1"),
        ("record.amount | minor_to_major(record.currency) | to_str", "25.00"),
        ("(record.billing_details.name | split(' '))[1]", "Lovelace"),
    ],
)
def test_pipes_and_calls(expression: str, expected: Any) -> None:
    assert map_one(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("record.amount + 500", 3000),
        ("record.amount - 500", 2000),
        ("record.amount * 2", 5000),
        ("record.amount / 4", 625.0),
        ("record.amount // 1000", 2),
        ("record.amount % 1000", 500),
        ("-record.amount", -2500),
        ("(record.amount | minor_to_major(record.currency)) * 2", Decimal("50.00")),
        ("'ch' + '_' + record.id", "ch_ch_1"),
        ("record.amount > 1000", True),
        ("1000 < record.amount <= 2500", True),
        ("record.currency in ['usd', 'cad']", True),
        ("record.currency not in ('usd',)", False),
        ("record.nope is None", True),
        ("record.id is not None", True),
        ("record.amount > 1000 and record.status == 'succeeded'", True),
        ("record.nope or 'fallback'", "fallback"),
        ("not record.nope", True),
        ("'big' if record.amount > 1000 else 'small'", "big"),
        ("'big' if record.amount > 9000 else 'small'", "small"),
        ("{'a': record.id, 'b': [1, 2.5, True, None]}", {"a": "ch_1", "b": [1, 2.5, True, None]}),
        ("{'general': 'GEN'}[record.metadata.designation]", "GEN"),
        ("(record.id, 1)", ("ch_1", 1)),
        ("()", ()),
    ],
)
def test_operators_conditionals_and_displays(expression: str, expected: Any) -> None:
    assert map_one(expression) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (2.5, 2.5),
        (True, True),
        (False, False),
        (None, None),
        (Decimal("1.10"), Decimal("1.10")),
    ],
)
def test_non_string_scalars_are_constants(value: Any, expected: Any) -> None:
    assert map_one(value) == expected


def test_quoted_text_is_a_constant() -> None:
    assert map_one("'Stripe'") == "Stripe"
    assert map_one('"it\'s"') == "it's"


def test_lookup_resolves_the_table_by_name() -> None:
    tables = {"funds": {"general": "GEN", "building": "BLD"}}
    mapping = compile_(
        {
            "piped": "record.metadata.designation | lookup('funds')",
            "called": "lookup(record.metadata.designation, 'funds')",
            "keyword": "record.metadata.designation | lookup(table='funds')",
            "missing": "record.currency | lookup('funds')",
            "fallback": "record.currency | lookup('funds', 'OTHER')",
        },
        tables=tables,
    )
    assert mapping(CHARGE) == {
        "piped": "GEN",
        "called": "GEN",
        "keyword": "GEN",
        "missing": None,
        "fallback": "OTHER",
    }


def test_a_plugin_transform_is_callable() -> None:
    def shout(value: str, times: int = 1) -> str:
        return value.upper() + "!" * times

    mapping = compile_mapping(
        {"out": "record.id | shout(times=2)"}, transforms={**builtin_transforms(), "shout": shout}
    )
    assert mapping(CHARGE) == {"out": "CH_1!!"}


# --- filter ----------------------------------------------------------------------------------


def test_filter_returns_filtered_without_mapping() -> None:
    calls: list[Any] = []

    def spy(value: Any) -> Any:
        calls.append(value)
        return value

    mapping = compile_mapping(
        {"id": "record.id | spy"},
        filter_expr="record.amount >= 1000 and record.status == 'succeeded'",
        transforms={"spy": spy},
    )
    assert mapping({**CHARGE, "amount": 999}) is FILTERED
    assert calls == []
    assert mapping(CHARGE) == {"id": "ch_1"}
    assert calls == ["ch_1"]


@pytest.mark.parametrize("falsy", [None, ""])
def test_no_filter_keeps_everything(falsy: str | None) -> None:
    assert compile_({"id": "record.id"}, filter_expr=falsy)({"id": None}) == {"id": None}


def test_filter_can_use_transforms() -> None:
    mapping = compile_({"id": "record.id"}, filter_expr="record.currency | upper == 'USD'")
    assert mapping(CHARGE) == {"id": "ch_1"}
    assert mapping({**CHARGE, "currency": "eur"}) is FILTERED


def test_source_is_readable_python() -> None:
    mapping = compile_({"amount": "record.amount | minor_to_major(record.currency)"}, "record.id")
    assert "def _mapping(_r):" in mapping.source
    assert "_FILTERED" in mapping.source
    assert "# map.amount: record.amount | minor_to_major(record.currency)" in mapping.source
    compile(mapping.source, "<test>", "exec")


# --- refused at compile time -----------------------------------------------------------------

UNSAFE = [
    ("record.__class__", "uses a dunder name, which is not allowed"),
    ("record.a.__dict__", "uses a dunder name"),
    ("__import__('os')", "uses a dunder name"),
    ("upper(__x=1)", "uses a dunder name"),
    ("open('x')", "unknown transform 'open'; known: coalesce, default,"),
    ("record.x()", "only transforms can be called"),
    ("record.id.upper()", "only transforms can be called"),
    ("(lambda: 1)()", "uses a lambda"),
    ("[x for x in record]", "uses a comprehension"),
    ("{k: 1 for k in record}", "uses a comprehension"),
    ("(x := 1)", "uses an assignment"),
    ("f'{record.id}'", "uses an f-string"),
    ("upper(*record.items)", "uses a starred argument"),
    ("os.system('ls')", "unknown name 'os'"),
    ("Stripe", "quote it inside the YAML string"),
    ("null", "did you mean None?"),
    ("record | nope", "unknown transform 'nope'"),
    ("record.currency | uper", "(did you mean 'upper'?)"),
    ("record.a | record.b", "the right side of '|' must be a transform"),
    ("record.a | 3", "the right side of '|' must be a transform"),
    # `|` binds more loosely than arithmetic, as in Python: this pipes into `upper + 'x'`
    ("record.a | upper + 'x'", "the right side of '|' must be a transform"),
    ("record.a & 1", "the & operator"),
    ("2 ** 100000", "the ** operator"),
    ("~record.a", "the ~ operator"),
    ("{1, 2}", "a set display"),
    ("record.items[0:2]", "a slice"),
    ("upper", "must be piped or called"),
    ("upper(record.id).lower", "only on record paths"),
    ("'abc'.upper", "only on record paths"),
    ("record.a is 1", "'is' only compares with None"),
    ("{**record}", "** inside a dict display"),
    ("upper(**record)", "** arguments are not allowed"),
    ("b'bytes'", "bytes literals are not allowed"),
    ("record.amount | minor_to_major", "missing a required argument: 'currency'"),
    ("upper(record.a, record.b)", "too many positional arguments"),
    ("record.amount +", "is not a valid expression: invalid syntax at the end"),
    ("record.a b", "is not a valid expression: invalid syntax at column 10"),
    ("import os", "imports are not allowed"),
    ("record.a = 1", "is not a valid expression"),
    ("", "empty expression"),
    ("record.fund | lookup('nope')", "unknown table 'nope'; known tables: funds"),
    ("record.fund | lookup(record.table)", "lookup's table must be a quoted table name"),
]


@pytest.mark.parametrize(("expression", "message"), UNSAFE, ids=[u[0] or "empty" for u in UNSAFE])
def test_unsafe_or_invalid_expressions_are_refused(expression: str, message: str) -> None:
    asked: list[tuple[str | int, ...]] = []

    def locate(path: tuple[str | int, ...]) -> str:
        asked.append(path)
        return "recipe.yaml:12:11"

    with pytest.raises(RecipeValidationError) as caught:
        compile_({"contact": {"amount": expression}}, tables={"funds": {}}, locate=locate)
    assert caught.value.where == "recipe.yaml:12:11"
    assert asked == [("map", "contact", "amount")]
    assert caught.value.message.startswith("map.contact.amount: ")
    assert message in caught.value.message
    assert str(caught.value).startswith("recipe.yaml:12:11: map.contact.amount: ")


def test_the_dunder_message_names_field_and_expression() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        compile_({"amount": "record.__class__"})
    assert caught.value.message == (
        "map.amount: 'record.__class__' uses a dunder name, which is not allowed"
    )


def test_a_bad_filter_is_located_as_the_filter() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        compile_({}, "record.__class__", locate=lambda path: f"at {path}")
    assert caught.value.where == "at ('filter',)"
    assert caught.value.message.startswith("filter: ")


def test_a_bad_list_item_is_located_by_index() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        compile_({"designations": [{"a": "1"}, {"a": "open(1)"}]}, locate=lambda path: str(path))
    assert caught.value.where == "('map', 'designations', 1, 'a')"
    assert caught.value.message.startswith("map.designations.1.a: ")


def test_unknown_table_lists_none_when_no_tables() -> None:
    with pytest.raises(RecipeValidationError, match=r"known tables: \(none declared\)"):
        compile_({"a": "lookup(record.a, 'funds')"})


@pytest.mark.parametrize("key", [1, True, None])
def test_field_names_must_be_text(key: Any) -> None:
    with pytest.raises(RecipeValidationError, match="field names must be text"):
        compile_({key: "record.id"})


def test_map_must_be_a_mapping() -> None:
    with pytest.raises(RecipeValidationError, match="map must be a mapping"):
        compile_(["record.id"])  # type: ignore[arg-type]


def test_a_constant_of_an_odd_type_is_refused() -> None:
    with pytest.raises(RecipeValidationError, match="cannot be a constant"):
        compile_({"a": {1, 2}})


def test_generated_code_has_no_builtins() -> None:
    # Even if a name slipped past the checks, the function's globals offer nothing to call.
    mapping = compile_({"a": "record.a"})
    assert mapping.function.__globals__["__builtins__"] == {}
    assert "open" not in mapping.function.__globals__


# --- failing at run time ---------------------------------------------------------------------


def test_a_transform_error_names_the_field_and_the_transform() -> None:
    mapping = compile_(
        {
            "gift": {"amount": "record.amount | minor_to_major(record.currency)"},
            "id": "record.id",
        }
    )
    with pytest.raises(MappingError) as caught:
        mapping({**CHARGE, "amount": "12.5"})
    assert caught.value.field == "gift.amount"
    assert "minor_to_major" in caught.value.message
    assert "'12.5'" in caught.value.message
    assert "record.amount | minor_to_major(record.currency)" in caught.value.message
    assert "ada@example.org" not in str(caught.value)  # never the whole record


def test_an_operator_error_names_the_field() -> None:
    mapping = compile_({"id": "record.id", "total": "record.amount + record.fee"})
    with pytest.raises(MappingError) as caught:
        mapping(CHARGE)
    assert caught.value.field == "total"
    assert "unsupported operand" in caught.value.message


def test_a_list_item_error_names_the_index() -> None:
    mapping = compile_(
        {"designations": [{"amount": "record.amount"}, {"amount": "record.items[0].sku | to_int"}]}
    )
    with pytest.raises(MappingError) as caught:
        mapping(CHARGE)
    assert caught.value.field == "designations.1.amount"
    assert caught.value.message.startswith("to_int: ")


def test_a_filter_error_is_a_mapping_error() -> None:
    mapping = compile_({"id": "record.id"}, "record.amount > 1000")
    with pytest.raises(MappingError) as caught:
        mapping({"amount": None})
    assert caught.value.field is None
    assert caught.value.message.startswith("filter: ")


def test_errors_keep_the_cause_for_debugging() -> None:
    mapping = compile_({"d": "record.x | parse_date"})
    with pytest.raises(MappingError) as caught:
        mapping({"x": "whenever"})
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.field == "d"


def test_a_mapping_error_from_a_plugin_gets_the_field() -> None:
    def picky(value: Any) -> Any:
        raise MappingError("not today")

    mapping = compile_mapping({"x": {"y": "record.id | picky"}}, transforms={"picky": picky})
    with pytest.raises(MappingError) as caught:
        mapping(CHARGE)
    assert (caught.value.field, caught.value.message) == ("x.y", "not today")


def test_other_exceptions_pass_through() -> None:
    def broken(value: Any) -> Any:
        raise RuntimeError("a bug, not a bad value")

    mapping = compile_mapping({"x": "record.id | broken"}, transforms={"broken": broken})
    with pytest.raises(RuntimeError):
        mapping(CHARGE)


def test_filtered_is_a_named_singleton() -> None:
    assert repr(FILTERED) == str(FILTERED) == "FILTERED"
    assert FILTERED is compile_({}, "False")(CHARGE)


# --- the generated source cannot be steered by the recipe ------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "x\n        return {'pwned': True}",
        "x\r        return {'pwned': True}",
        "x\x00y",
        "x\u2028return 1",
    ],
)
def test_field_names_cannot_inject_code(key: str) -> None:
    mapping = compile_({key: "record.id", "y": "'ok'"})
    assert mapping(CHARGE) == {key: "ch_1", "y": "ok"}


def test_expressions_cannot_inject_code_through_comments() -> None:
    mapping = compile_({"a": "record.id  # \n"})
    assert mapping(CHARGE) == {"a": "ch_1"}
    assert all(line.startswith(("def ", " ")) for line in mapping.source.splitlines())


def test_an_expression_may_span_lines() -> None:
    expression = "'big'\nif record.amount > 1000\nelse 'small'"
    assert map_one(expression) == "big"


def test_a_multi_line_syntax_error_gives_the_line() -> None:
    with pytest.raises(RecipeValidationError, match="at line 2 column"):
        compile_({"a": "record.a +\n+ )"})


def test_constants_without_a_literal_spelling_still_work() -> None:
    import enum
    import math
    from datetime import date

    class Level(enum.IntEnum):
        HIGH = 3

    assert map_one(Level.HIGH) is Level.HIGH
    assert math.isnan(map_one(float("nan")))
    assert map_one(date(2025, 1, 31)) == date(2025, 1, 31)


# --- bounded values: one record's expression never costs minutes or gigabytes ------------------

OVERSIZED = [
    "'x' * 10000000000",
    "10000000000 * 'x'",
    "[1] * 3000000000",
    "(1,) * 3000000000",
    "record.id * record.amount * record.amount",
    "'%*d' % (2000000000, 1)",
    "'%2000000000d' % 1",
    "'%.2000000000f' % 1.5",
    "'%-*.*f' % (5, 2000000000, 1.5)",
    "'%(a)2000000000s' % {'a': 1}",
    "('%' + '9' * 30 + 'd') % 1",
    " * ".join(["record.amount"] * 12),  # 2500 ** 12 has 41 digits
]


@pytest.mark.parametrize("expression", OVERSIZED)
def test_a_value_over_the_limits_is_refused_before_it_is_built(expression: str) -> None:
    started = time.monotonic()
    with pytest.raises(MappingError) as refused:
        map_one(expression)
    assert time.monotonic() - started < 0.5
    assert refused.value.field == "out"
    assert "CONNECTOR_MAX_LENGTH" in str(refused.value) or "CONNECTOR_MAX_DIGITS" in str(
        refused.value
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'ab' * 3", "ababab"),
        ("[0] * 2", [0, 0]),
        ("'%05.1f' % 2.25", "002.2"),
        ("'%*d|%-4s|' % (4, 7, 'a')", "   7|a   |"),
        ("'%d%%' % 50", "50%"),
        ("record.amount * 2", 5000),
        ("record.amount % 7", 2500 % 7),
        ("{'a': [1, {'b': 2}]}", {"a": [1, {"b": 2}]}),
        ("{1: 'Jan', 2: 'Feb'}[record.month]", "Feb"),
    ],
)
def test_values_inside_the_limits_are_built_as_python_builds_them(
    expression: str, expected: Any
) -> None:
    assert map_one(expression, {**CHARGE, "month": 2}) == expected


@pytest.mark.parametrize(
    "expression", ["{(): 1}", "{1: 'a', 'b': 2}", "[{'a': {None: 1}}]", "record.x | lookup('t')"]
)
def test_an_object_whose_keys_are_not_text_is_refused(expression: str) -> None:
    # JSON holds text keys only, and the payload's digest sorts them: `()` broke the run.
    with pytest.raises(MappingError, match="the keys of an object must be text"):
        map_one(expression, {"x": "k"}, tables={"t": {"k": {1: "a"}}})


def test_an_expression_over_the_limits_is_a_dead_letter_in_a_run(
    write_recipe: Any, invoke: Any, tmp_path: Path
) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a", "n": 2}\n{"id": "b", "n": 3000000000}\n{"id": "c", "n": 1}\n'
    )
    path = write_recipe(
        """
        version: 1
        name: sandbox
        source: {use: file.jsonl, with: {path: in.jsonl, key: id}}
        map:
          id: record.id
          stars: "'*' * record.n"
          keyed: "{record.id: 1} if record.n == 1 else {(): 1}"
        sink: {use: file.jsonl, with: {path: out.jsonl}}
        """
    )
    started = time.monotonic()
    result = invoke("run", path, "--json")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["outcomes"]["written"] == 1
    assert [(p["key"], p["field"]) for p in report["problems"]] == [
        ("a", "keyed"),
        ("b", "stars"),
    ]
    assert "would have 3,000,000,000 characters or items" in report["problems"][1]["reason"]
