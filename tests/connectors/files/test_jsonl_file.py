"""file.jsonl as a user runs it: exact numbers, keys, encodings, and appending after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from connectors.files.jsonl_file import JsonlSink
from core import limits
from core.state.sqlite import SqliteStateStore
from tests.conftest import read_jsonl

Invoke = Callable[..., Result]


def recipe(source: str, map_: str = "", sink: str = "path: out.jsonl") -> str:
    """A recipe reading a JSONL file with ``source`` settings into ``out.jsonl``."""
    return f"""
version: 1
name: jsonl-test
source:
  use: file.jsonl
  with: {{{source}}}
{map_}
sink:
  use: file.jsonl
  with: {{{sink}}}
"""


def outcomes(result: Result) -> dict[str, int]:
    """The outcomes a run's JSON report counts, leaving out those that did not happen."""
    assert result.exit_code in (0, 1), result.output
    counts: dict[str, int] = json.loads(result.stdout)["outcomes"]
    return {outcome: n for outcome, n in counts.items() if n}


def write_lines(path: Path, *lines: str) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


GIFT = '{"id": "g1", "big": 12345678901234567.89, "amount": 0.1, "fee": 0.2, "rate": 1.50}'


# --- numbers ----------------------------------------------------------------------------------


def test_fractional_numbers_are_exact_from_reading_to_writing(
    write_recipe, invoke, tmp_path
) -> None:
    write_lines(tmp_path / "in.jsonl", GIFT)
    map_ = """map:
  id: record.id
  big: record.big | to_str
  total: record.amount + record.fee
  scaled: record.amount * 1.5
  cheap: record.amount == 0.1
  rate: record.rate"""
    path = write_recipe(recipe("path: in.jsonl, key: id", map_))
    assert outcomes(invoke("run", path, "--json")) == {"written": 1}
    written = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert json.loads(written) == {
        "id": "g1",
        "big": "12345678901234567.89",
        "total": "0.3",
        "scaled": "0.15",
        "cheap": True,
        "rate": 1.5,
    }
    assert '"rate": 1.50' in written  # a number read is written back as that number

    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 1}


def test_a_big_amount_keeps_every_digit_into_a_csv(write_recipe, invoke, tmp_path) -> None:
    write_lines(tmp_path / "in.jsonl", GIFT)
    map_ = "map:\n  id: record.id\n  big: record.big | to_decimal\n  rate: record.rate"
    text = recipe("path: in.jsonl, key: id", map_).replace(
        "use: file.jsonl\n  with: {path: out.jsonl}", "use: file.csv\n  with: {path: out.csv}"
    )
    assert outcomes(invoke("run", write_recipe(text), "--json")) == {"written": 1}
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "id,big,rate",
        "g1,12345678901234567.89,1.50",
    ]


def test_records_pass_through_unchanged(write_recipe, invoke, tmp_path) -> None:
    line = '{"id": "g1", "amount": 1E+2, "nested": {"fee": 0.25, "list": [1, 2.5]}, "name": "Zoë"}'
    write_lines(tmp_path / "in.jsonl", line)
    assert outcomes(invoke("run", write_recipe(recipe("path: in.jsonl")), "--json")) == {
        "written": 1
    }
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == line + "\n"


# --- keys and unreadable lines ----------------------------------------------------------------


def test_a_changed_record_is_an_update_of_its_key(write_recipe, invoke, tmp_path) -> None:
    write_lines(tmp_path / "in.jsonl", '{"id": "g1", "amount": 10}', '{"id": "g2", "amount": 5}')
    path = write_recipe(recipe("path: in.jsonl, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2}
    write_lines(tmp_path / "in.jsonl", '{"id": "g1", "amount": 12}', '{"id": "g2", "amount": 5}')
    assert outcomes(invoke("run", path, "--json")) == {"updated": 1, "unchanged": 1}


def test_a_record_without_its_key_is_dead_lettered_until_fixed(
    write_recipe, invoke, tmp_path
) -> None:
    write_lines(tmp_path / "in.jsonl", '{"id": "g1", "amount": 10}', '{"idd": "g2", "amount": 5}')
    path = write_recipe(recipe("path: in.jsonl, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 1, "invalid": 1}
    letters = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert [(r["key"], r["reason"]) for r in letters] == [
        ("line:2", "line 2 has no 'id', the source's key; its fields: idd, amount")
    ]
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["g1"]

    write_lines(tmp_path / "in.jsonl", '{"id": "g1", "amount": 10}', '{"id": "g2", "amount": 5}')
    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 1, "written": 1}
    assert json.loads(invoke("dlq", "list", path, "--json").stdout) == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"id": "g2",', "line 2 is not valid JSON"),
        ('["g2"]', "line 2 is not a JSON object"),
        ('{"id": null}', "line 2 has no 'id', the source's key"),
    ],
)
def test_a_line_that_is_no_record_is_dead_lettered(
    write_recipe, invoke, tmp_path, line, reason
) -> None:
    write_lines(tmp_path / "in.jsonl", '{"id": "g1"}', line, "", '{"id": "g3"}')
    path = write_recipe(recipe("path: in.jsonl, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    (letter,) = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert letter["key"] == "line:2"
    assert letter["reason"].startswith(reason)


# --- hostile lines ------------------------------------------------------------------------------

HOSTILE_LINES = {
    "a lone surrogate in a value": (
        '{"id": "g2", "note": "\\udc80"}',
        "line 2 holds text that is not valid Unicode",
    ),
    "a lone surrogate in a field name": (
        '{"id": "g2", "\\ud800": 1}',
        "line 2 holds text that is not valid Unicode",
    ),
    "a lone surrogate in the key": (
        '{"id": "\\udfff"}',
        "line 2 holds text that is not valid Unicode",
    ),
    "5,000 nested brackets": ("[" * 5000, "line 2 is nested more than 100 deep"),
    "an object nested 500 deep": (
        '{"id": "g2", "x": ' + '{"a": ' * 500 + "1" + "}" * 501,
        "line 2 is nested more than 100 deep",
    ),
    "an integer of 4,400 digits": (
        '{"id": "g2", "amount": ' + "9" * 4400 + "}",
        "line 2 cannot be read: the number 999999999999… (4,400 characters) is too large",
    ),
    "an exponent of a million": (
        '{"id": "g2", "amount": 1e999999}',
        "line 2 cannot be read: the number 1e999999 is too large",
    ),
}


@pytest.mark.parametrize(("line", "reason"), HOSTILE_LINES.values(), ids=HOSTILE_LINES.keys())
def test_a_hostile_line_is_dead_lettered_and_never_blocks_the_lines_after_it(
    write_recipe, invoke, tmp_path, line, reason
) -> None:
    write_lines(tmp_path / "in.jsonl", '{"id": "g1"}', line, '{"id": "g3"}')
    path = write_recipe(
        recipe("path: in.jsonl, key: id", "map:\n  id: record.id\n  amount: record.amount | to_int")
    )
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    (letter,) = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert (letter["key"], letter["reason"][: len(reason)]) == ("line:2", reason)
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["g1", "g3"]

    write_lines(tmp_path / "in.jsonl", '{"id": "g1"}', line, '{"id": "g3"}', '{"id": "g4"}')
    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 2, "invalid": 1, "written": 1}


@pytest.fixture
def length_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Set CONNECTOR_MAX_LENGTH for the recipe runs of one test; the default comes back after."""
    yield lambda length: monkeypatch.setenv("CONNECTOR_MAX_LENGTH", str(length))
    limits.configure(limits.Limits())


def test_a_line_over_the_length_limit_is_dead_lettered_unread(
    write_recipe, invoke, tmp_path, length_limit
) -> None:
    length_limit(1000)
    long_line = json.dumps({"id": "g2", "note": "x" * 5000})
    write_lines(tmp_path / "in.jsonl", '{"id": "g1"}', long_line, '{"id": "g3"}')
    path = write_recipe(recipe("path: in.jsonl, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    (letter,) = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert letter["reason"] == (
        "line 2 is longer than 1,000 characters, the most one record may have"
        " (CONNECTOR_MAX_LENGTH)"
    )


@pytest.mark.parametrize(
    ("value", "sink", "reason"),
    [
        ("'\\\\udc80'", "path: out.jsonl", "holds '\\udc80', half of a surrogate pair"),
        ("'€' + record.id", "path: out.jsonl, encoding: latin-1", "holds '\\u20ac', which latin-1"),
    ],
)
@pytest.mark.parametrize("sink_use", ["file.jsonl", "file.csv"])
def test_a_payload_the_output_cannot_encode_is_dead_lettered(
    write_recipe, invoke, tmp_path, value, sink, reason, sink_use
) -> None:
    write_lines(
        tmp_path / "in.jsonl", '{"id": "g1", "n": 1}', '{"id": "g2"}', '{"id": "g3", "n": 3}'
    )
    map_ = f'map:\n  id: record.id\n  x: "{value} if record.n is None else record.id"'
    text = recipe("path: in.jsonl, key: id", map_, sink).replace(
        "use: file.jsonl\n  with: {path: out", f"use: {sink_use}\n  with: {{path: out"
    )
    path = write_recipe(text)
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    (letter,) = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert letter["key"] == "g2"
    assert letter["reason"].startswith(reason)
    again = outcomes(invoke("run", path, "--json"))  # the refused payload is not written either
    assert again["unchanged"] == 2
    assert "written" not in again


# --- encodings ----------------------------------------------------------------------------------


def test_an_encoding_reads_utf16(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": "g1", "name": "Zoë"}\n', encoding="utf-16")
    path = write_recipe(recipe("path: in.jsonl, key: id, encoding: utf-16"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 1}
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "g1", "name": "Zoë"}]


def test_text_in_another_encoding_is_refused_naming_its_line(
    write_recipe, invoke, tmp_path
) -> None:
    lines = [json.dumps({"id": f"g{i}", "fund": "general"}) for i in range(1, 3001)]
    lines.append(json.dumps({"id": "g3001", "fund": "Café"}, ensure_ascii=False))
    (tmp_path / "in.jsonl").write_bytes("\n".join(lines).encode("latin-1"))
    result = invoke("run", write_recipe(recipe("path: in.jsonl, key: id")))
    assert result.exit_code == 3
    assert "line 3001 is not utf-8-sig text" in result.stderr.replace("\n", "")


# --- writing ------------------------------------------------------------------------------------


def test_an_existing_output_is_refused_unless_told(write_recipe, invoke, tmp_path) -> None:
    write_lines(tmp_path / "in.jsonl", '{"id": "g1"}')
    write_lines(tmp_path / "out.jsonl", '{"id": "old"}')
    result = invoke("run", write_recipe(recipe("path: in.jsonl, key: id")))
    assert result.exit_code == 3
    assert "exists but this recipe's state has no record of writing it" in result.stderr.replace(
        "\n", ""
    )
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "old"}]


@pytest.mark.parametrize(
    ("if_exists", "expected"), [("overwrite", ["g1"]), ("append", ["old", "g1"])]
)
def test_if_exists_overwrites_or_appends(write_recipe, invoke, tmp_path, if_exists, expected):
    write_lines(tmp_path / "in.jsonl", '{"id": "g1"}')
    write_lines(tmp_path / "out.jsonl", '{"id": "old"}')
    path = write_recipe(
        recipe("path: in.jsonl, key: id", sink=f"path: out.jsonl, if_exists: {if_exists}")
    )
    assert outcomes(invoke("run", path, "--json")) == {"written": 1}
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == expected


def test_lines_written_after_the_last_commit_are_cut_off_and_written_once(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    write_lines(tmp_path / "in.jsonl", *(f'{{"id": "g{i}", "amount": {i}.5}}' for i in range(1, 6)))
    path = write_recipe(recipe("path: in.jsonl, key: id", sink="path: out.jsonl, batch_size: 2"))
    checkpoint = JsonlSink.checkpoint
    asked = []

    def crash_before_the_third_commit(self: JsonlSink) -> dict[str, Any] | None:
        asked.append(1)  # on opening, then with each batch's commit
        if len(asked) == 4:
            raise KeyboardInterrupt  # g5 is on disk, its commit never happens
        return checkpoint(self)

    monkeypatch.setattr(JsonlSink, "checkpoint", crash_before_the_third_commit)
    assert invoke("run", path).exit_code == 130
    monkeypatch.undo()
    # The cut alone undoes g5: the run marked nothing in flight (a mark costs a commit).
    state = SqliteStateStore(tmp_path / ".connector" / "state.db")
    assert state.in_flight("jsonl-test") == []
    state.close()
    with (tmp_path / "out.jsonl").open("a", encoding="utf-8") as out:
        out.write('{"id": "g6", "amo')  # and half a line, as a power cut would leave it

    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 4, "written": 1}
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == ["g1", "g2", "g3", "g4", "g5"]
    assert out[-1]["amount"] == 5.5
