"""The central HTTP client: the only place in the project where an ``httpx.Client`` is built.

Every connector gets its client here, so auth refresh, the shared rate budget, retries with backoff,
timeouts and secret redaction apply to every outbound call::

    from core.http import BearerToken, RateLimit, Service, build_client, raise_for_status

    SERVICE = Service("Example", "https://api.example.org", rate_limit=RateLimit(5000, 3600))
    with build_client(SERVICE, BearerToken(key)) as client:
        response = client.get("/things")
        raise_for_status(response, SERVICE)

Modules: ``service`` (what a service is), ``auth`` (credential flows), ``governor`` (waiting for
the rate budget), ``budget`` (where budgets are kept), ``retry`` (backoff), ``store`` (tokens),
``redact`` (secrets out of logs), ``client`` (assembly and error mapping).

Each name is imported from its module when it is first used: ``core.http.redact``, which the
recipe loader needs, must not cost httpx and SQLite to a recipe that reaches no service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.http.auth import Basic, BearerToken, HeaderKey, OAuthPasswordGrant, QueryKey
    from core.http.budget import (
        BudgetStore,
        MemoryBudgetStore,
        SqliteBudgetStore,
        Usage,
        store_for,
    )
    from core.http.client import (
        build_client,
        check_url,
        error_body,
        error_message,
        raise_for_status,
    )
    from core.http.governor import GovernedTransport, retry_after
    from core.http.redact import (
        SecretFilter,
        redact_headers,
        redact_text,
        redact_url,
        register_secret,
    )
    from core.http.retry import RetryTransport, is_retry_safe
    from core.http.service import (
        IDEMPOTENT,
        RETRY_TIMEOUTS,
        RateLimit,
        RetryPolicy,
        Service,
        budget_key,
        fingerprint,
    )
    from core.http.store import MemoryTokenStore, SqliteTokenStore, TokenStore, token_store_for

#: Where each exported name is defined.
_HOMES = {
    "Basic": "core.http.auth",
    "BearerToken": "core.http.auth",
    "budget_key": "core.http.service",
    "BudgetStore": "core.http.budget",
    "build_client": "core.http.client",
    "check_url": "core.http.client",
    "error_body": "core.http.client",
    "error_message": "core.http.client",
    "fingerprint": "core.http.service",
    "GovernedTransport": "core.http.governor",
    "HeaderKey": "core.http.auth",
    "IDEMPOTENT": "core.http.service",
    "is_retry_safe": "core.http.retry",
    "MemoryBudgetStore": "core.http.budget",
    "MemoryTokenStore": "core.http.store",
    "OAuthPasswordGrant": "core.http.auth",
    "QueryKey": "core.http.auth",
    "raise_for_status": "core.http.client",
    "RateLimit": "core.http.service",
    "redact_headers": "core.http.redact",
    "redact_text": "core.http.redact",
    "redact_url": "core.http.redact",
    "register_secret": "core.http.redact",
    "retry_after": "core.http.governor",
    "RETRY_TIMEOUTS": "core.http.service",
    "RetryPolicy": "core.http.service",
    "RetryTransport": "core.http.retry",
    "SecretFilter": "core.http.redact",
    "Service": "core.http.service",
    "SqliteBudgetStore": "core.http.budget",
    "SqliteTokenStore": "core.http.store",
    "store_for": "core.http.budget",
    "token_store_for": "core.http.store",
    "TokenStore": "core.http.store",
    "Usage": "core.http.budget",
}

__all__ = [
    "Basic",
    "BearerToken",
    "BudgetStore",
    "GovernedTransport",
    "HeaderKey",
    "IDEMPOTENT",
    "MemoryBudgetStore",
    "MemoryTokenStore",
    "OAuthPasswordGrant",
    "QueryKey",
    "RateLimit",
    "RETRY_TIMEOUTS",
    "RetryPolicy",
    "RetryTransport",
    "SecretFilter",
    "Service",
    "SqliteBudgetStore",
    "SqliteTokenStore",
    "TokenStore",
    "Usage",
    "budget_key",
    "build_client",
    "check_url",
    "error_body",
    "error_message",
    "fingerprint",
    "is_retry_safe",
    "raise_for_status",
    "redact_headers",
    "redact_text",
    "redact_url",
    "register_secret",
    "retry_after",
    "store_for",
    "token_store_for",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'core.http' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value
