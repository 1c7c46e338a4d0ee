"""The ``auth:`` block of ``http.json``: which credential, mapped to the central client's auth.

``type`` picks the variant, so a typo lists the valid ones (``bearer, basic, header, query,
none``). Secrets are ``SecretStr``: they never show in a settings dump, an error or a report, and
the auth classes of :mod:`core.http.auth` register them for redaction.
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.http import Basic, BearerToken, HeaderKey, QueryKey


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BearerAuth(_Auth):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr

    def build(self) -> httpx.Auth:
        return BearerToken(self.token.get_secret_value())


class BasicAuth(_Auth):
    """HTTP Basic: a username and a password (or an API key in the password)."""

    type: Literal["basic"]
    username: str
    password: SecretStr

    def build(self) -> httpx.Auth:
        return Basic(self.username, self.password.get_secret_value())


class HeaderAuth(_Auth):
    """A key in a header of the API's choosing."""

    type: Literal["header"]
    header: str = Field(default="X-API-Key", min_length=1)
    value: SecretStr

    def build(self) -> httpx.Auth:
        return HeaderKey(self.header, self.value.get_secret_value())


class QueryAuth(_Auth):
    """A key in the query string (masked in every log line and message)."""

    type: Literal["query"]
    param: str = Field(default="api_key", min_length=1)
    value: SecretStr

    def build(self) -> httpx.Auth:
        return QueryKey(self.param, self.value.get_secret_value())


class NoAuth(_Auth):
    """A public API."""

    type: Literal["none"] = "none"

    def build(self) -> None:
        return None


AuthConfig = Annotated[
    BearerAuth | BasicAuth | HeaderAuth | QueryAuth | NoAuth, Field(discriminator="type")
]
