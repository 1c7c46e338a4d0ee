"""file.csv as a user runs it: reading rows, keys, encodings, and appending after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from connectors.files.csv_file import CsvSink
from core import limits

Invoke = Callable[..., Result]


def recipe(
    source: str, sink: str = "use: file.csv\n  with: {path: out.csv}", map_: str = ""
) -> str:
    """A recipe reading a CSV with ``source`` settings (flow-mapping body) into ``sink``."""
    return f"""
version: 1
name: csv-test
source:
  use: file.csv
  with: {{{source}}}
{map_}
sink:
  {sink}
"""


def outcomes(result: Result) -> dict[str, int]:
    """The outcomes a run's JSON report counts, leaving out those that did not happen."""
    assert result.exit_code in (0, 1), result.output
    counts: dict[str, int] = json.loads(result.stdout)["outcomes"]
    return {outcome: n for outcome, n in counts.items() if n}


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


DONATIONS = "id,amount,fund\nd1,10.00,general\nd2,25.50,missions\n"


# --- reading -----------------------------------------------------------------------------------


def test_a_delimiter_splits_cells_on_reading_and_writing(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text("id;amount\nd1;10,50\n", encoding="utf-8")
    path = write_recipe(
        recipe(
            "path: in.csv, delimiter: ';', key: id",
            'use: file.csv\n  with: {path: out.csv, delimiter: "|"}',
        )
    )
    assert outcomes(invoke("run", path, "--json")) == {"written": 1}
    assert lines(tmp_path / "out.csv") == ["id|amount", "d1|10,50"]


def test_without_a_header_columns_name_the_cells(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text("d1,10.00\nd2,25.50\n", encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, header: false, columns: [id, amount], key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2}
    assert lines(tmp_path / "out.csv") == ["id,amount", "d1,10.00", "d2,25.50"]


def test_without_a_header_or_columns_the_recipe_is_refused(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text(DONATIONS, encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, header: false"))
    for command in ("validate", "run"):
        result = invoke(command, path)
        assert result.exit_code == 2
        assert "recipe.yaml:5:" in result.stderr
        assert "with header: false, set columns:" in result.stderr
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (
            "path: in.csv, columns: [id, amount]",
            "columns: is for header: false",
        ),
        (
            "path: in.csv, header: false, columns: [id, amount], key: idd",
            "key 'idd' is not one of the columns: id, amount",
        ),
        ("path: in.csv, encoding: utf-9", "unknown encoding 'utf-9'"),
    ],
)
def test_settings_that_cannot_work_are_refused(write_recipe, invoke, settings, said) -> None:
    result = invoke("validate", write_recipe(recipe(settings)))
    assert result.exit_code == 2
    assert said in result.stderr


def test_blank_rows_are_no_records_and_empty_cells_read_as_null(
    write_recipe, invoke, tmp_path
) -> None:
    text = "id,amount,note\nd1,1,full\n , ,\t\nd2,2,\n,,\nd3,,x\n"
    (tmp_path / "in.csv").write_text(text, encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, key: id", "use: file.jsonl\n  with: {path: o.jsonl}"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 3}
    rows = [json.loads(line) for line in lines(tmp_path / "o.jsonl")]
    assert rows == [
        {"id": "d1", "amount": "1", "note": "full"},
        {"id": "d2", "amount": "2", "note": None},
        {"id": "d3", "amount": None, "note": "x"},
    ]


def test_a_row_of_the_wrong_width_is_dead_lettered(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text("id,amount\nd1,1\nd2,2,extra\n\nd3,3\n", encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    letters = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert [(r["key"], r["reason"]) for r in letters] == [
        ("line:3", "line 3 has 3 cells; the header has 2")
    ]


@pytest.fixture
def length_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Set CONNECTOR_MAX_LENGTH for the recipe runs of one test; the default comes back after."""
    yield lambda length: monkeypatch.setenv("CONNECTOR_MAX_LENGTH", str(length))
    limits.configure(limits.Limits())


def test_a_cell_longer_than_the_csv_modules_limit_is_read(write_recipe, invoke, tmp_path) -> None:
    notes = "x" * 150_000  # over csv.field_size_limit()'s default of 131,072
    (tmp_path / "in.csv").write_text(f"id,notes\nd1,a\nd2,{notes}\nd3,c\n", encoding="utf-8")
    sink = "use: file.jsonl\n  with: {path: out.jsonl}"
    path = write_recipe(recipe("path: in.csv, key: id", sink))
    assert outcomes(invoke("run", path, "--json")) == {"written": 3}
    assert len(lines(tmp_path / "out.jsonl")[1]) > 150_000


def test_a_row_over_the_length_limit_is_dead_lettered_and_the_rows_after_it_are_read(
    write_recipe, invoke, tmp_path, length_limit
) -> None:
    length_limit(1000)
    (tmp_path / "in.csv").write_text(f"id,notes\nd1,a\nd2,{'x' * 5000}\nd3,c\n", encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    assert lines(tmp_path / "out.csv") == ["id,notes", "d1,a", "d3,c"]
    letters = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert [(r["key"], r["reason"]) for r in letters] == [
        (
            "line:3",
            "line 3 is longer than 1,000 characters, the most one record may have"
            " (CONNECTOR_MAX_LENGTH)",
        )
    ]


def test_a_quote_that_never_closes_blocks_no_row_after_it(
    write_recipe, invoke, tmp_path, length_limit
) -> None:
    length_limit(1000)
    rows = "".join(f"d{i},note {i}\n" for i in range(3, 300))
    (tmp_path / "in.csv").write_text(f'id,notes\nd1,a\nd2,"oops\n{rows}', encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 298, "invalid": 1}
    (letter,) = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert letter["key"] == "line:3"
    assert "is a closing quote missing?" in letter["reason"]
    assert lines(tmp_path / "out.csv")[-1] == "d299,note 299"


# --- keys -------------------------------------------------------------------------------------


def test_a_changed_row_is_an_update_of_its_key(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text(DONATIONS, encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2}
    (tmp_path / "in.csv").write_text(DONATIONS.replace("25.50", "26.00"), encoding="utf-8")
    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 1, "updated": 1}


def test_a_key_column_the_file_lacks_stops_the_run(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text(DONATIONS, encoding="utf-8")
    result = invoke("run", write_recipe(recipe("path: in.csv, key: idd")))
    assert result.exit_code == 3
    message = result.stderr.replace("\n", "")
    assert "has no column 'idd', the source's key; its columns: id, amount, fund" in message
    assert not (tmp_path / "out.csv").exists()  # nothing was written under a hash


def test_a_row_with_an_empty_key_is_dead_lettered(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text(DONATIONS + ",5.00,general\n", encoding="utf-8")
    path = write_recipe(recipe("path: in.csv, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2, "invalid": 1}
    letters = json.loads(invoke("dlq", "list", path, "--json").stdout)
    assert [(r["key"], r["reason"]) for r in letters] == [
        ("line:4", "line 4 has no value in the key column 'id'")
    ]


# --- encodings ----------------------------------------------------------------------------------


def test_an_encoding_reads_a_legacy_export(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_bytes("id,donor\nd1,Zoë Müller\n".encode("cp1252"))
    path = write_recipe(recipe("path: in.csv, key: id, encoding: cp1252"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 1}
    assert lines(tmp_path / "out.csv")[1] == "d1,Zoë Müller"


def test_a_byte_order_mark_is_not_part_of_the_first_column(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_bytes(b"\xef\xbb\xbf" + DONATIONS.encode())
    path = write_recipe(recipe("path: in.csv, key: id"))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2}


def test_text_in_another_encoding_is_refused_naming_its_line(
    write_recipe, invoke, tmp_path
) -> None:
    # Far enough into the file that the decoder's read-ahead cannot stand in for the line.
    rows = "".join(f"d{i},1.00,general\n" for i in range(1, 3001))
    (tmp_path / "in.csv").write_bytes(
        ("id,amount,fund\n" + rows + "d3001,2.00,Café\n").encode("cp1252")
    )
    result = invoke("run", write_recipe(recipe("path: in.csv, key: id")))
    assert result.exit_code == 3
    message = result.stderr.replace("\n", "")
    assert "line 3002 is not utf-8-sig text" in message
    assert "set the source's encoding" in message


# --- writing ------------------------------------------------------------------------------------


def test_decimals_are_written_as_plain_numbers(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text("id,amount\nd1,1e2\nd2,0.00000005\n", encoding="utf-8")
    map_ = "map:\n  id: record.id\n  amount: record.amount | to_decimal"
    path = write_recipe(recipe("path: in.csv, key: id", map_=map_))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2}
    assert lines(tmp_path / "out.csv") == ["id,amount", "d1,100", "d2,0.00000005"]


def test_an_existing_output_is_refused_unless_told(write_recipe, invoke, tmp_path) -> None:
    (tmp_path / "in.csv").write_text(DONATIONS, encoding="utf-8")
    (tmp_path / "out.csv").write_text("id,amount,fund\nold,1.00,general\n", encoding="utf-8")
    result = invoke("run", write_recipe(recipe("path: in.csv, key: id")))
    assert result.exit_code == 3
    assert "set if_exists: overwrite or append" in result.stderr.replace("\n", "")
    assert lines(tmp_path / "out.csv")[1] == "old,1.00,general"


@pytest.mark.parametrize(
    ("if_exists", "expected"),
    [
        ("overwrite", ["id,amount,fund", "d1,10.00,general", "d2,25.50,missions"]),
        ("append", ["id,amount,fund", "old,1.00,general", "d1,10.00,general", "d2,25.50,missions"]),
    ],
)
def test_if_exists_overwrites_or_appends(write_recipe, invoke, tmp_path, if_exists, expected):
    (tmp_path / "in.csv").write_text(DONATIONS, encoding="utf-8")
    (tmp_path / "out.csv").write_text("id,amount,fund\nold,1.00,general\n", encoding="utf-8")
    sink = f"use: file.csv\n  with: {{path: out.csv, if_exists: {if_exists}}}"
    path = write_recipe(recipe("path: in.csv, key: id", sink))
    assert outcomes(invoke("run", path, "--json")) == {"written": 2}
    assert lines(tmp_path / "out.csv") == expected
    # Once the recipe's state has written the file, a re-run carries on from what it wrote.
    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 2}
    assert lines(tmp_path / "out.csv") == expected


def test_rows_written_after_the_last_commit_are_cut_off_and_written_once(
    write_recipe, invoke, tmp_path, monkeypatch
) -> None:
    rows = "".join(f"d{i},{i}.00,general\n" for i in range(1, 5))
    (tmp_path / "in.csv").write_text("id,amount,fund\n" + rows, encoding="utf-8")
    sink = "use: file.csv\n  with: {path: out.csv, batch_size: 2}"
    path = write_recipe(recipe("path: in.csv, key: id", sink))
    checkpoint = CsvSink.checkpoint
    asked = []

    def crash_before_the_second_commit(self: CsvSink) -> dict[str, Any] | None:
        asked.append(1)  # on opening, then with each batch's commit
        if len(asked) == 3:
            raise KeyboardInterrupt  # the second batch is on disk, its commit never happens
        return checkpoint(self)

    monkeypatch.setattr(CsvSink, "checkpoint", crash_before_the_second_commit)
    assert invoke("run", path).exit_code == 130
    monkeypatch.undo()
    assert len(lines(tmp_path / "out.csv")) == 5  # header and all four rows
    with (tmp_path / "out.csv").open("a", encoding="utf-8") as out:
        out.write("d5,5.0")  # and half a row, as a power cut would leave it

    assert outcomes(invoke("run", path, "--json")) == {"unchanged": 2, "written": 2}
    assert lines(tmp_path / "out.csv") == ["id,amount,fund", *rows.splitlines()]
