"""An example third-party plugin: a source of made-up pledges and a ``cents`` transform."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from core import Record, Source, hookimpl


class PledgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=3, ge=0, le=10_000)


class ExamplePledges(Source):
    """``count`` pledges numbered from 1; the cursor is the last number read."""

    name: ClassVar[str] = "example.pledges"
    Settings: ClassVar[type[BaseModel]] = PledgeSettings
    description: ClassVar[str] = "made-up pledges, from the example plugin"
    settings: PledgeSettings

    def read(self, cursor: Any | None) -> Iterator[Record]:
        for number in range(int(cursor or 0) + 1, self.settings.count + 1):
            yield {"id": f"p-{number}", "number": number, "cents": number * 1000}

    def cursor_value(self, record: Mapping[str, Any]) -> Any | None:
        return record["number"]


def cents(value: int) -> Decimal:
    """Whole cents to dollars."""
    return Decimal(value) / 100


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [ExamplePledges]


@hookimpl
def connector_register_transforms() -> Mapping[str, Any]:
    return {"example_cents": cents}
