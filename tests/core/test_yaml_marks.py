"""libyaml's reading of a recipe is the pure-Python parser's: the same values at the same lines
and columns; whatever it refuses or reads its own way goes to the pure-Python parser, whose
errors users see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core import yaml_marks
from core.errors import RecipeError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(ROOT.glob("recipes/*.yaml")) + sorted(ROOT.glob("examples/**/*.yaml"))

#: What a recipe may hold that a dump of plain data does not: anchors, merges, block and folded
#: text, explicit tags, dates, flow collections, complex keys, Windows line ends, documents,
#: byte order marks.
WRITTEN = [
    "a: &x {b: [1, 2.5, 'é', !!str 3]}\nc: *x\nd:\n  <<: *x\n  e: |\n    block\n    text\n",
    "base: &b\n  x: 1\nother:\n  <<: [*b, {y: 2}]\n  x: 3\n",
    "- 1\n- [a, {b: c}]\n- ? complex\n  : v\n- !!binary aGVsbG8=\n",
    "when: 2025-01-02\nat: 2025-01-02 03:04:05+01:00\nnone: ~\nhex: 0x1F\nyes: on\n",
    "k: ünïcødé 多字节 value\n'quoted key': \"tab\\tand \\u00e9\"\n",
    "a:\r\n  b: 1\r\n  c:\r\n  - d\r\n",
    "text: >\n  folded\n  more\n\n  para\nkeep: |+\n  kept\n\nnext: 1\n",
    "--- \nfoo\n...\n",
    "# only a comment\n",
    "\ufeffa: [1]\nb: \ufeffx\n",
    "",
]

#: Texts each parser refuses: the pure-Python one's words reach the user.
BROKEN = [
    "a: [1, 2\n",
    "a: b: c\n",
    "a: 1\na: 2\n",
    "a: *missing\n",
    "when: !!timestamp nope\n",
    "\ufeffa: 1\nb: [\n",
    "a: \x00\n",
    "x: &a [*a]\n",
    "\tkey: 1\n",
    "a: 'open\n",
]


def both(text: str) -> tuple[Any, Any]:
    fast = yaml_marks._located_by_libyaml(text, "r.yaml")  # noqa: SLF001 - the path under test
    slow = yaml_marks._located(text, "r.yaml")  # noqa: SLF001
    assert fast is not None, "libyaml refused a text the pure-Python parser reads"
    return (repr(fast.data), fast.marks), (repr(slow.data), slow.marks)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_every_shipped_recipe_reads_the_same_with_libyaml(path: Path) -> None:
    fast, slow = both(path.read_text(encoding="utf-8"))
    assert fast == slow


def test_a_valid_recipe_is_read_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """What start-up gains (bench/startup.py): libyaml reads a recipe with no error in it."""

    def pure_python(text: str, file: str) -> None:
        raise AssertionError("read by the pure-Python parser")

    monkeypatch.setattr(yaml_marks, "_located", pure_python)
    text = (ROOT / "recipes/csv-donations-to-virtuous-gifts.yaml").read_text(encoding="utf-8")
    assert yaml_marks.load_located(text, "r.yaml").data["source"]


@pytest.mark.parametrize("text", WRITTEN)
def test_what_a_recipe_may_hold_reads_the_same_with_libyaml(text: str) -> None:
    fast, slow = both(text)
    assert fast == slow


@pytest.mark.parametrize("text", BROKEN)
def test_a_broken_recipe_is_told_the_pure_python_parsers_error(text: str) -> None:
    with pytest.raises(RecipeError) as slow:
        yaml_marks._located(text, "r.yaml")  # noqa: SLF001
    with pytest.raises(RecipeError) as said:
        yaml_marks.load_located(text, "r.yaml")
    assert (said.value.where, str(said.value)) == (slow.value.where, str(slow.value))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(documents, st.sampled_from([None, True, False]), st.booleans(), st.sampled_from([2, 4]))
def test_any_dumped_document_reads_the_same_with_libyaml(
    data: Any, flow: bool | None, unicode: bool, indent: int
) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=unicode, indent=indent)
    fast, slow = both(text)
    assert fast == slow
