"""connector sandbox: a local Virtuous for newcomers (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def restored_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox points ${VIRTUOUS_BASE_URL} and ${VIRTUOUS_API_KEY} at itself for the rest of
    the process; monkeypatch puts them back after the test."""
    monkeypatch.setenv("VIRTUOUS_BASE_URL", "unset")
    monkeypatch.setenv("VIRTUOUS_API_KEY", "unset")


@pytest.mark.usefixtures("restored_environment")
def test_the_demo_sends_each_gift_once(invoke, tmp_path) -> None:
    result = invoke(
        "sandbox",
        "--seed",
        ROOT / "recipes" / "data" / "virtuous-sandbox.json",
        "--run",
        ROOT / "recipes" / "csv-donations-to-virtuous-gifts.yaml",
        "--twice",
        "--state",
        tmp_path / "state.db",
    )
    assert result.exit_code == 0, result.output
    assert "nightly import ran: 4 gift(s)" in result.output
    assert "imported into Virtuous: 4" in result.output
    assert '"gifts": 4' in result.output


@pytest.mark.usefixtures("restored_environment")
@pytest.mark.parametrize(
    ("seed", "said"),
    [
        ('{"gifts": [{"contactId": 5, "amount": "1"}]}', "seeded gift names no existing contact"),
        ("projects: [GENERAL]", "is not JSON"),
    ],
    ids=["refused", "not-json"],
)
def test_a_seed_the_emulator_cannot_take_stops_the_sandbox(
    invoke, tmp_path, seed: str, said: str
) -> None:
    (tmp_path / "seed.json").write_text(seed)
    result = invoke("sandbox", "--seed", tmp_path / "seed.json")
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert "Traceback" not in result.output
