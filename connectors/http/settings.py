"""The ``with:`` block of ``http.json``: where the API is, how it pages, what is new since last run.

``pagination.type`` and ``auth.type`` pick a variant, so an unknown one is refused with the list
of valid choices, and each variant accepts only its own keys.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.http.auth_config import AuthConfig, NoAuth
from connectors.http.incremental import CursorFormat, Start
from connectors.http.paginators import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    SinglePage,
)
from core.http import RateLimit


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- pagination ------------------------------------------------------------------------------


class NoPagination(_Config):
    """One request answers everything."""

    type: Literal["none"] = "none"

    def build(self) -> Paginator:
        return SinglePage()


class PageNumberPagination(_Config):
    """``?page=N``; stops on an empty or short page, or at ``total_pages_path``."""

    type: Literal["page_number"]
    param: str = "page"
    start: int = Field(default=1, ge=0)
    size_param: str | None = Field(default=None, description="e.g. per_page")
    size: int | None = Field(default=None, ge=1, description="at most the API's maximum")
    total_pages_path: str | None = Field(default=None, description="e.g. meta.last_page")

    def build(self) -> Paginator:
        return PageNumberPaginator(
            self.param, self.start, self.size_param, self.size, self.total_pages_path
        )


class OffsetPagination(_Config):
    """``?offset=N&limit=M``; stops on a short page or once ``total_path`` records are read."""

    type: Literal["offset"]
    param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, ge=1)
    total_path: str | None = None

    def build(self) -> Paginator:
        return OffsetPaginator(self.param, self.limit_param, self.limit, 0, self.total_path)


class CursorPagination(_Config):
    """A cursor in the body (``cursor_path``) sent back as ``param``."""

    type: Literal["cursor"]
    cursor_path: str = Field(min_length=1, description="e.g. meta.next_cursor")
    param: str = "cursor"

    def build(self) -> Paginator:
        return CursorPaginator(self.cursor_path, self.param)


class LinkHeaderPagination(_Config):
    """The ``Link`` header's ``rel="next"`` URL."""

    type: Literal["link_header"]
    rel: str = "next"

    def build(self) -> Paginator:
        return LinkHeaderPaginator(self.rel)


class NextUrlPagination(_Config):
    """A next-page URL at ``path`` in the body (``links.next``, ``next``)."""

    type: Literal["next_url"]
    path: str = Field(default="next", min_length=1)

    def build(self) -> Paginator:
        return NextUrlPaginator(self.path)


PaginationConfig = Annotated[
    NoPagination
    | PageNumberPagination
    | OffsetPagination
    | CursorPagination
    | LinkHeaderPagination
    | NextUrlPagination,
    Field(discriminator="type"),
]


# --- incremental reads and rate -------------------------------------------------------------


class IncrementalConfig(_Config):
    """Ask only for what changed: send ``param`` = the last run's highest ``cursor_field``."""

    param: str = Field(min_length=1, description="the query parameter, e.g. updated_since")
    cursor_field: str = Field(min_length=1, description="dotted record field, e.g. updated_at")
    start: Start = Field(default=None, description="first run: date, ISO time or Unix seconds")
    format: CursorFormat = Field(default="iso", description="how the parameter is written")
    overlap_seconds: int = Field(
        default=0, ge=0, description="re-read this far back: late writes, equal timestamps"
    )
    ordered: bool = Field(
        default=False,
        description="the API returns records oldest first by cursor_field, so the cursor may "
        "advance with every batch (otherwise only once the whole read completes)",
    )

    @property
    def overlap(self) -> timedelta:
        return timedelta(seconds=self.overlap_seconds)


class RateLimitConfig(_Config):
    requests: int = Field(ge=1)
    per_seconds: float = Field(gt=0)

    def build(self) -> RateLimit:
        return RateLimit(self.requests, self.per_seconds)


QueryValue = str | int | float | bool


class JsonSourceSettings(_Config):
    """Everything ``http.json`` needs to read a JSON list endpoint."""

    service_name: str = Field(default="HTTP API", min_length=1, description="used in messages")
    base_url: str = Field(min_length=1, description="https://api.example.org/v1")
    path: str = Field(default="", description="joined to base_url, e.g. /donations")
    params: dict[str, QueryValue] = Field(default_factory=dict, description="static query")
    headers: dict[str, str] = Field(default_factory=dict, description="static, not secret")
    auth: AuthConfig = Field(default_factory=NoAuth)
    pagination: PaginationConfig = Field(default_factory=NoPagination)
    records_path: str = Field(default="", description="dotted path to the list; empty: the body")
    key_field: str = Field(default="id", description="dotted field that identifies a record")
    incremental: IncrementalConfig | None = None
    rate_limit: RateLimitConfig | None = None
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        # A key in a plain header would be logged and shown; auth: keeps it secret.
        for name in value:
            if name.lower() in ("authorization", "proxy-authorization", "x-api-key", "api-key"):
                msg = f"put the {name} header in auth: (type: header or bearer), not headers:"
                raise ValueError(msg)
        return value
