"""How the Virtuous connector reaches Virtuous: settings, auth, the rate limit, error messages."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Self

import click
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

# httpx, the client and the service's description (rate limit, retries) come with the first
# request: `validate` needs none of them.
if TYPE_CHECKING:
    import httpx

    from core.context import Context
    from core.http import Service

DEFAULT_BASE_URL = "https://api.virtuoussoftware.com"
OTP_VARIABLE = "VIRTUOUS_OTP"


class VirtuousSettings(BaseModel):
    """Credentials and limits shared by every Virtuous source and sink."""

    # Each subclass's validator is built when first used: a recipe validates one of them, and
    # none validates these base settings themselves.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    base_url: str = Field(default=DEFAULT_BASE_URL, description="the Virtuous API")
    api_key: SecretStr | None = Field(default=None, description="an API key (recommended)")
    username: str | None = Field(default=None, description="for the OAuth password grant")
    password: SecretStr | None = None
    otp: SecretStr | None = Field(
        default=None,
        description="two-factor code; else $VIRTUOUS_OTP, else asked for on a terminal",
    )
    organization: str | None = Field(
        default=None,
        description="names the organization's shared rate budget: every key of one"
        " organization draws from the same 5,000 requests/hour",
    )
    requests_per_hour: int = Field(default=5000, ge=1, description="the organization's limit")
    rate_window_seconds: float = Field(
        default=3600, gt=0, description="the limit's window (emulators use seconds)"
    )
    timeout_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        if self.api_key is None and not (self.username and self.password):
            msg = "set api_key, or username and password (OAuth)"
            raise ValueError(msg)
        return self


def describe_error(response: httpx.Response) -> str:
    """Virtuous's message, with the fields its ``modelState`` names."""
    from core.http import error_body

    body = error_body(response)
    if isinstance(body, str):
        return body
    if isinstance(body.get("error"), dict):  # the 2026 envelope
        return str(body["error"].get("message", ""))
    message = str(body.get("message") or body.get("error_description") or body.get("error") or "")
    problems = body.get("modelState") or {}
    if isinstance(problems, dict) and problems:
        details = "; ".join(
            f"{field}: {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
            for field, errors in problems.items()
        )
        message = f"{message} ({details})" if message else details
    return message


def service_for(settings: VirtuousSettings) -> Service:
    from core.http import RateLimit, Service

    budget = f"virtuous:{settings.organization}" if settings.organization else None
    return Service(
        name="Virtuous",
        base_url=settings.base_url.rstrip("/"),
        rate_limit=RateLimit(settings.requests_per_hour, settings.rate_window_seconds),
        timeout=settings.timeout_seconds,
        budget_key=budget,
        describe_error=describe_error,
        credential="API key" if settings.api_key is not None else "access token",
    )


def auth_for(settings: VirtuousSettings, context: Context) -> httpx.Auth:
    from core.http import BearerToken, OAuthPasswordGrant, token_store_for

    if settings.api_key is not None:
        return BearerToken(settings.api_key.get_secret_value())
    # The settings model has checked that one credential or the other is set.
    assert settings.username is not None
    assert settings.password is not None
    return OAuthPasswordGrant(
        f"{settings.base_url.rstrip('/')}/Token",
        settings.username,
        settings.password.get_secret_value(),
        otp=settings.otp.get_secret_value() if settings.otp else two_factor_code,
        token_store=token_store_for(context.state),
        service="Virtuous",
        otp_hint=f"set the otp setting or {OTP_VARIABLE}, or run on a terminal to be asked",
    )


def two_factor_code() -> str:
    """The code Virtuous sent to the user's phone: from ``$VIRTUOUS_OTP``, else asked for on the
    terminal (on stderr, so ``--json`` output stays clean); empty when neither is possible.

    Called only when Virtuous answers the login with a 202, i.e. when a code is really needed.
    """
    code = os.environ.get(OTP_VARIABLE, "").strip()
    if code or not sys.stdin.isatty():
        return code
    # The prompt itself is written straight to the terminal, on the line the run's live progress
    # redraws several times a second, so it vanishes at once. This line goes through sys.stderr,
    # which the progress display (while it runs) prints above itself, so it stays on screen.
    print(
        "Virtuous sent a two-factor code to your phone: type it and press Enter (it is not shown)",
        file=sys.stderr,
        flush=True,
    )
    return str(click.prompt("Virtuous two-factor code", hide_input=True, err=True)).strip()


def virtuous_client(settings: VirtuousSettings, context: Context) -> tuple[httpx.Client, Service]:
    """The central client for Virtuous, and the service description for its errors."""
    service = service_for(settings)
    return context.http_client(service, auth_for(settings, context)), service
