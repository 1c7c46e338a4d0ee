"""Stripe as the central client sees it, and the stripe SDK wired to that client.

The SDK builds every request (URL, form encoding, ``Stripe-Version``, idempotency keys) and turns
every response into objects and errors;
:class:`~connectors.stripe.central_http.CentralHTTPClient` only carries the bytes, through
``context.http_client``, so the shared rate budget, retries with jitter, timeouts, redaction and
the plain-HTTP check apply to Stripe like to every other service::

    client = stripe_client(settings.api_key, settings.base_url, context)
    with stripe_errors():
        page = client.v1.charges.list(params={"limit": 100})
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import SecretStr

from core.errors import AuthError, FatalError, RetriableError
from core.http import RateLimit, RetryPolicy, Service
from core.http.redact import redact_text
from core.http.service import RETRY_STATUSES

if TYPE_CHECKING:
    import stripe

    from core.context import Context

NAME = "Stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"

# Stripe's documented read limits: 100 requests a second in live mode, 25 in test mode. It sends
# no rate-limit headers, so the governor relies on its own count (and on Retry-After, if any).
_LIVE = RateLimit(100, 1.0, header_limit=None, header_remaining=None, header_reset=None)
_TEST = RateLimit(25, 1.0, header_limit=None, header_remaining=None, header_reset=None)

# 409 is Stripe's "lock timeout, try again"; the SDK itself retries it, so the central client does.
# A 429 is waited out by the central client for as long as the policy's throttle_timeout allows.
_RETRY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=8.0, statuses=RETRY_STATUSES | {409})


def stripe_service(base_url: str, api_key: str) -> Service:
    """The Stripe service at ``base_url``, throttled to the mode the key belongs to."""
    live = api_key.startswith(("sk_live_", "rk_live_"))
    return Service(
        name=NAME,
        base_url=base_url.rstrip("/"),
        rate_limit=_LIVE if live else _TEST,
        retry=_RETRY,
        timeout=80.0,  # the SDK's own default; list pages with expansions can be slow
    )


def stripe_client(api_key: SecretStr, base_url: str, context: Context) -> stripe.StripeClient:
    """A ``StripeClient`` whose every request goes through ``context.http_client``."""
    import stripe  # here, not at the top: commands that reach no service never load the SDK

    from connectors.stripe.central_http import CentralHTTPClient
    from core.http import BearerToken

    # The SDK's debug line per request repeats the central client's, without the rate budget.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    key = api_key.get_secret_value().strip()
    service = stripe_service(base_url, key)
    central = context.http_client(service, BearerToken(key))
    return stripe.StripeClient(
        key,
        base_addresses={"api": service.base_url},
        http_client=CentralHTTPClient(central),
        max_network_retries=0,  # the central client retries; two retry loops would multiply
    )


def _detail(error: stripe.StripeError) -> str:
    text = error.user_message or str(error) or type(error).__name__
    return " ".join(redact_text(str(text)).split())


@contextmanager
def stripe_errors() -> Iterator[None]:
    """Turn the SDK's errors into the project's: a refused key stops the run naming Stripe,
    throttling and server faults (already retried by the central client) are retriable, and a
    request Stripe calls invalid would fail the same way next time, so it is fatal."""
    import stripe

    try:
        yield
    except stripe.AuthenticationError as error:
        raise AuthError(NAME, error.http_status or 401, _detail(error)) from None
    except stripe.PermissionError as error:
        raise AuthError(NAME, error.http_status or 403, _detail(error)) from None
    except stripe.RateLimitError as error:
        msg = f"{NAME} kept answering 429 (rate limited): {_detail(error)}"
        raise RetriableError(msg, status=429) from None
    except stripe.APIConnectionError as error:
        msg = f"{NAME} could not be reached: {_detail(error)}"
        raise RetriableError(msg) from None
    except stripe.StripeError as error:
        status = error.http_status
        if status is not None and (status >= 500 or status == 409):
            msg = f"{NAME} answered {status} after retries: {_detail(error)}"
            raise RetriableError(msg, status=status) from None
        msg = f"{NAME} rejected the request ({status or 'no status'}): {_detail(error)}"
        raise FatalError(msg) from None
