"""Records checked against the part of a service's published contract a source relies on.

A source whose service sends a record of the wrong shape (a field missing, a wrong type) must not
mis-read it: a refund flag read as None turns a refunded donation into a gift. So a source
declares, as a pydantic model, the fields its recipes depend on, and passes every record through
a :class:`ContractCheck`. A record that breaks it is dead-lettered (an :class:`Unreadable` that
names the field) and the run goes on; each broken field is also logged once per run, because a
contract change usually breaks every record the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from core.source import Record, Unreadable

log = logging.getLogger("connector.contract")


class ContractCheck:
    """Checks each record of one read against ``model`` (which should allow extra keys: services
    add fields without notice). ``key`` names a record in dead letters."""

    def __init__(
        self, model: type[BaseModel], service: str, key: Callable[[Mapping[str, Any]], str]
    ) -> None:
        self.model = model
        self.service = service
        self.key = key
        self._reported: set[str] = set()

    def __call__(self, records: Iterable[Record | Unreadable]) -> Iterator[Record | Unreadable]:
        for record in records:
            yield record if isinstance(record, Unreadable) else self.check(record)

    def check(self, record: Record) -> Record | Unreadable:
        try:
            self.model.model_validate(record)
        except ValidationError as error:
            return self._broken(record, error)
        return record

    def _broken(self, record: Record, error: ValidationError) -> Unreadable:
        from core.recipe import error_text  # only once a record breaks the contract

        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the record)"
        problem = "missing" if first["type"] == "missing" else error_text(first)
        reason = (
            f"{self.service} sent a record that breaks its published contract: "
            f"'{field}' {problem}; it was not read, so that nothing is guessed from it"
        )
        if field not in self._reported:
            self._reported.add(field)
            log.warning(
                "%s: records whose '%s' is %s are dead-lettered (first: %s)",
                self.service,
                field,
                problem,
                _safe_key(self.key, record),
            )
        return Unreadable(_safe_key(self.key, record), reason, raw=record)


def _safe_key(key: Callable[[Mapping[str, Any]], str], record: Mapping[str, Any]) -> str:
    try:
        return key(record)
    except (KeyError, TypeError, ValueError):
        # Without an id the record is still told apart from others, as the runner does.
        text = json.dumps(record, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]
