"""core.contract: a record that breaks a source's published contract is dead-lettered in words."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from core.contract import ContractCheck
from core.source import Unreadable


class Charge(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    refunded: bool

    @field_validator("id")
    @classmethod
    def _charge_id(cls, value: str) -> str:
        if not value.startswith("ch_"):
            msg = "is not a charge id (ch_...)"
            raise ValueError(msg)
        return value


def _reason(record: dict[str, object]) -> str:
    checked = ContractCheck(Charge, "Stripe", lambda r: str(r.get("id")))(iter([record]))
    [broken] = list(checked)
    assert isinstance(broken, Unreadable)
    return broken.reason


def test_a_validator_s_own_words_without_pydantic_s_prefix() -> None:
    reason = _reason({"id": "py_1", "refunded": False})
    assert "'id' is not a charge id (ch_...)" in reason
    assert "Value error" not in reason


def test_a_missing_field_is_named() -> None:
    assert "'refunded' missing; it was not read" in _reason({"id": "ch_1"})
