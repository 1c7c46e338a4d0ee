"""The ``auth:`` block of ``http.json``: which credential, mapped to the central client's auth.

``type`` picks the variant, so a typo lists the valid ones (``bearer, basic, header, query,
none``). Secrets are ``SecretStr``: they never show in a settings dump, an error or a report, and
the auth classes of :mod:`core.http.auth` register them for redaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:  # built for a request: `validate` checks the block and builds none
    import httpx


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BearerAuth(_Auth):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr

    def build(self) -> httpx.Auth:
        from core.http import BearerToken

        return BearerToken(self.token.get_secret_value())


class BasicAuth(_Auth):
    """HTTP Basic: a username and a password (or an API key in the password)."""

    type: Literal["basic"]
    username: str
    password: SecretStr

    def build(self) -> httpx.Auth:
        from core.http import Basic

        return Basic(self.username, self.password.get_secret_value())


class HeaderAuth(_Auth):
    """A key in a header of the API's choosing."""

    type: Literal["header"]
    header: str = Field(default="X-API-Key", min_length=1)
    value: SecretStr

    def build(self) -> httpx.Auth:
        from core.http import HeaderKey

        return HeaderKey(self.header, self.value.get_secret_value())


class QueryAuth(_Auth):
    """A key in the query string (masked in every log line and message)."""

    type: Literal["query"]
    param: str = Field(default="api_key", min_length=1)
    value: SecretStr

    def build(self) -> httpx.Auth:
        from core.http import QueryKey

        return QueryKey(self.param, self.value.get_secret_value())


class NoAuth(_Auth):
    """A public API."""

    type: Literal["none"] = "none"

    def build(self) -> None:
        return None


AuthConfig = Annotated[
    BearerAuth | BasicAuth | HeaderAuth | QueryAuth | NoAuth, Field(discriminator="type")
]
