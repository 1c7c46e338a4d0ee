"""What a connector tells the central client about a service: where it is, how fast it may be
called, how failures are retried, and how its error bodies read.

These are plain frozen dataclasses, so a connector declares its service once at module level::

    VIRTUOUS = Service(
        name="Virtuous",
        base_url="https://api.virtuoussoftware.com",
        rate_limit=RateLimit(requests=5000, per_seconds=3600),
    )

Nothing here knows any particular service; the values come from the connectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by the code that calls a service: start-up needs none of it
    import httpx

#: Set this request extension to ``True`` to let a POST or PATCH be retried.
IDEMPOTENT = "connector_idempotent"
#: Set this request extension to ``False`` when the caller handles a timeout (or a 504) itself,
#: for instance by asking again for a smaller page: it then comes back at the first occurrence.
RETRY_TIMEOUTS = "connector_retry_timeouts"

#: Statuses worth another try: throttling, server faults, and 520 (Cloudflare's "unknown error"
#: in front of an origin that did answer, seen in front of some CRMs).
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504, 520})


@dataclass(frozen=True)
class RateLimit:
    """A service's request budget: at most ``requests`` in any ``per_seconds`` window.

    The ``header_*`` fields name the response headers the server uses to report its own view of the
    budget; the governor lowers its local budget to match. ``None`` ignores that header.
    ``header_reset`` is read as Unix epoch seconds (small values are taken as seconds from now).
    """

    requests: int
    per_seconds: float
    max_concurrency: int | None = None
    header_limit: str | None = "X-RateLimit-Limit"
    header_remaining: str | None = "X-RateLimit-Remaining"
    header_reset: str | None = "X-RateLimit-Reset"

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            msg = f"a rate limit needs requests >= 1 and per_seconds > 0, got {self!r}"
            raise ValueError(msg)
        if self.max_concurrency is not None and self.max_concurrency < 1:
            msg = f"max_concurrency must be at least 1, got {self.max_concurrency}"
            raise ValueError(msg)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: ``attempts`` tries in all, exponential backoff with full
    jitter between ``0`` and ``min(max_delay, base_delay * 2**n)``, never past ``total_timeout``
    seconds from the first try.

    A 429 is counted apart: the server turned the request away unprocessed and said when to come
    back, so its ``Retry-After`` is waited out as often as it comes, for up to ``throttle_timeout``
    seconds in all (an hourly window can ask for most of an hour). Only a wait that would end
    past it lets the 429 reach the caller: a throttle never fails a record while the run has time.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_timeout: float = 300.0
    statuses: frozenset[int] = RETRY_STATUSES
    throttle_timeout: float = 3900.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.throttle_timeout < 0:
            msg = f"a retry policy needs an attempt and a throttle timeout >= 0, got {self!r}"
            raise ValueError(msg)


@dataclass(frozen=True)
class Service:
    """One remote service as the central client sees it.

    ``budget_key`` names the rate budget shared by every client and process using the same
    credential. When ``None`` it is derived from ``name`` and a fingerprint of the credential
    (see :func:`budget_key`), never from the credential itself.

    ``describe_error`` pulls a human message out of an error response; without it the usual
    ``message``/``error``/``detail`` body fields are used. ``credential`` names what a 401 refused
    ("API key", "access token") in the error message.
    """

    name: str
    base_url: str
    rate_limit: RateLimit | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    budget_key: str | None = None
    describe_error: Callable[[httpx.Response], str] | None = None
    credential: str = "credential"


def fingerprint(*parts: str) -> str:
    """A short, stable, non-reversible tag for a credential: the first 12 hex digits of SHA-256.

    Enough to tell two keys apart in a budget key or a log line; useless for recovering the key.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:12]


def budget_key(service: Service, auth: httpx.Auth | None) -> str:
    """The key of the rate budget ``service`` draws from when called with ``auth``.

    Auth classes from :mod:`core.http.auth` carry a ``fingerprint``; any other auth (or none)
    falls back to one budget per service name, which errs on the side of waiting too much.
    """
    if service.budget_key:
        return service.budget_key
    tag = getattr(auth, "fingerprint", None)
    return f"{service.name.lower()}:{tag if isinstance(tag, str) else 'shared'}"
