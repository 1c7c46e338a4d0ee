"""Settings of the Virtuous emulator: every point the API reference leaves open is one of these."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from core.emulation import Faults

PERMISSIONS = frozenset(
    {
        "contacts:read",
        "contacts:write",
        "gifts:read",
        "gifts:write",
        "projects:read",
        "projects:write",
        "organization:read",
        "webhooks:write",
    }
)
"""The areas a key's permission group can grant; a missing area answers 403."""


class ApiKey(BaseModel):
    """A seeded API key. A bare string in ``api_keys`` means "this org, every permission"."""

    org: str
    permissions: frozenset[str] | None = None  # None grants every area

    @model_validator(mode="before")
    @classmethod
    def _from_org(cls, value: Any) -> Any:
        return {"org": value} if isinstance(value, str) else value


class User(BaseModel):
    """A user who can get a token with the password grant."""

    email: str
    password: str
    org: str = "emulator-org"
    two_factor: bool = False
    otp: str = "123456"
    permissions: frozenset[str] | None = None


class EmulatorSettings(BaseModel):
    """How the emulated Virtuous behaves; the defaults follow the reference's suggestions."""

    api_keys: dict[str, ApiKey] = Field(
        default_factory=lambda: {"emulator-key": ApiKey(org="emulator-org")}
    )
    users: list[User] = Field(default_factory=list)
    organization_name: str = "Emulated Nonprofit"
    organization_time_zone: str = "US/Arizona"
    organization_culture: str = "en-US"

    # One fixed window per organization, shared by all of its keys and tokens.
    rate_limit: int = 5000
    rate_window_seconds: float = 3600

    # "lenient" (documented: Virtuous's HMAC sample calls a repeated transactionId "the only
    # validation error you will encounter"): a gift transaction that binds is accepted, and one
    # with missing or bad values is set aside as "needs update" by the import, with the reason.
    # "strict" (our inference): refused at POST with a modelState naming the field.
    transaction_validation: Literal["lenient", "strict"] = "lenient"
    # What a second reversal of one gift meets: nothing public says Virtuous refuses it.
    repeated_reversal: Literal["accept", "refuse"] = "accept"

    gift_batch_max_size: int = 100
    contact_batch_max_size: int = 100
    require_designation_sum: bool = False

    query_default_take: int = 10
    query_max_take: int = 1000  # larger takes are clamped to it, not refused
    # A Full query asking for more rows than this waits full_query_timeout_delay, then answers 504,
    # like the real API when a FullGift page is too big.
    full_query_timeout_take: int | None = None
    full_query_timeout_delay: float = 0.0

    # "legacy": {"message", "modelState"} as recorded in 2017; "envelope": the 2026 docs'
    # {"error": {"code", "message", "details"}}. 429s always use the envelope.
    error_shape: Literal["legacy", "envelope"] = "legacy"

    webhook_secret: str | None = None
    webhook_signature_header: str = "X-Virtuous-Signature"
    webhook_signature_encoding: Literal["base64", "hex"] = "base64"
    # Virtuous retries a delivery "with growing delays and a finite number of attempts" and
    # publishes neither: five attempts, each wait three times the last (our inference).
    webhook_retry_delays: tuple[float, ...] = (30.0, 90.0, 270.0, 810.0)
    webhook_delay_scale: float = Field(default=1.0, ge=0)  # tests run the schedule in ms
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    token_lifetime_seconds: int = 1295999
    refresh_token_lifetime_seconds: int = 365 * 24 * 3600

    faults: Faults = Field(default_factory=Faults)
    clock: Callable[[], datetime] | None = None  # UTC; tests pass a controllable one
