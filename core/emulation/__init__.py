"""Machinery for building a faithful local fake of a service: an *emulator*.

Every built-in connector ships one (``connectors/<service>/emulator/``) and a third-party connector
can build its own from the same parts. An emulator is an ASGI app, usually starlette, served on
loopback by :class:`EmulatorServer`::

    from core.emulation import EmulatorServer, FaultMiddleware, Faults, json_response

    faults = Faults()
    app = Starlette(routes=[...], middleware=[Middleware(FaultMiddleware, faults=faults,
                                                         error_body=my_service_error)])
    with EmulatorServer(app) as server:
        httpx.get(f"{server.url}/api/thing")

The parts:

- :mod:`core.emulation.faults`: :class:`Faults`, the switches a test flips while a run goes on
  (5xx, 429 storms, timeouts, dropped connections, lost responses), and :class:`FaultMiddleware`,
  which applies them and answers in the service's own error dialect (an :data:`ErrorBody`).
- :mod:`core.emulation.server`: :class:`EmulatorServer` (a background thread, for tests) and
  :func:`serve_forever` (the foreground, for ``connector sandbox``).
- :mod:`core.emulation.records`: the state, control plane and seeding of a one-collection list API
  (a fundraising platform's donations); subclass :class:`~core.emulation.records.RecordsState`.
- :mod:`core.emulation.responses`: JSON bodies with exact decimals and ISO dates.
- :mod:`core.emulation.webhooks`: :class:`WebhookDeliverer`, which POSTs an emulator's webhooks
  to its subscribers from a background thread and retries failures with growing delays;
  :func:`hmac_sha256` (from :mod:`core.webhooks`) signs them; :func:`stopped_with_the_server`
  is an app's lifespan that stops the deliverer's thread with the server.

Every emulator keeps a control plane under ``/_emulator/`` (seed, faults, state, reset) that faults
never touch. Write the emulator from the service's published specification, and test it against a
JSON Schema of that specification, as ``tests/contracts/`` does for the built-in ones.
"""

from core.emulation.faults import (
    CONTROL_PREFIX,
    ApiMiddleware,
    DropConnection,
    ErrorBody,
    FaultMiddleware,
    Faults,
    plain_error,
)
from core.emulation.responses import JSON_MEDIA_TYPE, empty_response, json_default, json_response
from core.emulation.server import EmulatorServer, serve_forever
from core.emulation.webhooks import (
    Attempt,
    WebhookDeliverer,
    attempts_json,
    stopped_with_the_server,
)
from core.webhooks import hmac_sha256

__all__ = [
    "Attempt",
    "WebhookDeliverer",
    "attempts_json",
    "hmac_sha256",
    "stopped_with_the_server",
    "CONTROL_PREFIX",
    "JSON_MEDIA_TYPE",
    "ApiMiddleware",
    "DropConnection",
    "EmulatorServer",
    "ErrorBody",
    "plain_error",
    "FaultMiddleware",
    "Faults",
    "empty_response",
    "json_default",
    "json_response",
    "serve_forever",
]
