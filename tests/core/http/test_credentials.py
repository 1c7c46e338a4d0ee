"""Every credential problem, with every service, ends in one clear line: no library's text."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.test_secrets import KEYS, PLAIN, RECIPES, Service, serving

#: A recipe that reads from (or, for Virtuous, writes to) each service.
RECIPE_OF = {
    "virtuous": "csv-donations-to-virtuous-gifts.yaml",
    "stripe": "stripe-charges-to-virtuous-gifts.yaml",
    "mailchimp": "mailchimp-members-to-virtuous-contacts.yaml",
    "givebutter": "givebutter-to-virtuous-gifts.yaml",
    "donorbox": "donorbox-to-virtuous-gifts.yaml",
}
# What leaks when a library's exception reaches the user: its class name or a traceback.
_LIBRARY_TEXT = re.compile(r"Traceback|[A-Z][a-z]+(Error|Exception)\b|httpx|httpcore|h11|stripe\.")


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, Service]]:
    with serving(set(RECIPE_OF)) as running:
        yield running


@pytest.fixture
def recipes(tmp_path: Path, services, monkeypatch) -> Path:
    for service in services.values():
        for name, value in service.env.items():
            monkeypatch.setenv(name, value)
    for name, value in {**KEYS, **PLAIN}.items():
        monkeypatch.setenv(name, value)
    return Path(shutil.copytree(RECIPES, tmp_path / "recipes"))


def _one_clear_line(stderr: str, *expected: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0]
    assert not _LIBRARY_TEXT.search(lines[0]), lines[0]


@pytest.mark.parametrize("service", sorted(RECIPE_OF))
def test_a_refused_key(service, recipes, invoke, monkeypatch) -> None:
    variable = f"{service.upper()}_API_KEY"
    monkeypatch.setenv(variable, "wrong-key-0123-us1")
    result = invoke("run", recipes / RECIPE_OF[service])
    assert result.exit_code == 3
    _one_clear_line(result.stderr, service.title(), "(401)")


@pytest.mark.parametrize("service", sorted(RECIPE_OF))
def test_a_key_with_a_line_break(service, recipes, invoke, monkeypatch) -> None:
    monkeypatch.setenv(f"{service.upper()}_API_KEY", "abc\ndef-us1")
    result = invoke("run", recipes / RECIPE_OF[service])
    assert result.exit_code == 3
    _one_clear_line(result.stderr, service.title(), "holds a line break")


def test_an_empty_key_is_named_before_any_request(recipes, invoke, monkeypatch, services) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "")
    result = invoke("run", recipes / RECIPE_OF["stripe"])
    assert result.exit_code == 2
    _one_clear_line(result.stderr, "environment variable STRIPE_API_KEY is set but empty")


def test_a_key_pasted_with_a_curly_quote(recipes, invoke, monkeypatch) -> None:
    monkeypatch.setenv("VIRTUOUS_API_KEY", "vk\u2019canary")
    result = invoke("run", recipes / RECIPE_OF["virtuous"])
    assert result.exit_code == 3
    _one_clear_line(result.stderr, "the Virtuous API key holds a character that is not ASCII")
