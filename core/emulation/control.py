"""Calls from this process to an emulator on loopback: its control plane (``/_emulator/...``:
seed, state, faults, the events ``connector sandbox`` provokes) and, for a sandbox that acts as
a user would, its API. They go through the central client like every other request (one attempt:
an emulator's control plane has no faults to wait out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from core.errors import FatalError
from core.http import RetryPolicy, Service, build_client, error_message

_ONE_TRY = RetryPolicy(attempts=1, throttle_timeout=0)


class EmulatorRefused(FatalError):
    """The emulator answered 4xx or 5xx (the sandbox stops); the message is the emulator's."""


def emulator_request(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """``method path`` on the emulator at ``url`` with ``body`` as JSON;
    :class:`EmulatorRefused` unless it answers 2xx or 3xx."""
    service = Service("emulator", url.rstrip("/"), retry=_ONE_TRY, timeout=30)
    with build_client(service) as client:
        response = client.request(method, path, json=body, headers=headers)
    if response.status_code >= 400:
        raise EmulatorRefused(error_message(response, service))
    return response


def control(url: str, method: str, what: str, body: Any = None) -> Any:
    """Call the control plane of the emulator at ``url`` (``/_emulator/WHAT``); its answer as
    JSON (None when it has no body)."""
    response = emulator_request(url, method, f"/_emulator/{what}", body)
    return response.json() if response.content else None
