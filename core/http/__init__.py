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
"""

from __future__ import annotations

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
from core.http.retry import IDEMPOTENT, RETRY_TIMEOUTS, RetryTransport, is_retry_safe
from core.http.service import RateLimit, RetryPolicy, Service, budget_key, fingerprint
from core.http.store import MemoryTokenStore, SqliteTokenStore, TokenStore, token_store_for

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
