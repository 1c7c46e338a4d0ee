"""A loopback server for an emulator's ASGI app: in a background thread for tests, or in the
foreground for ``connector sandbox``."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from core.emulation.faults import DROP_SCOPE_KEY

# uvicorn closes the socket without writing anything when an app returns a value, which is exactly
# a dropped connection; the error it logs about it is noise here, so it is filtered out.
_DROPPED = "connection dropped by an emulated fault"
logging.getLogger("uvicorn.error").addFilter(lambda record: record.args != (_DROPPED,))


class _DropAware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> str | None:
        drops: list[bool] = []
        await self.app(
            {**scope, DROP_SCOPE_KEY: drops} if scope["type"] == "http" else scope, receive, send
        )
        return _DROPPED if drops else None


def _config(app: ASGIApp, host: str, port: int, log_level: str, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        _DropAware(app),
        host=host,
        port=port,
        log_level=log_level,
        http="h11",  # the drop trick relies on its behaviour; httptools may not be installed
        timeout_graceful_shutdown=1,  # a hanging fault must not hold up stop()
        **extra,
    )


def serve_forever(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"
) -> None:
    """Serve ``app`` in the foreground until interrupted (for ``connector sandbox``)."""
    uvicorn.Server(_config(app, host, port, log_level)).run()


class EmulatorServer:
    """Runs an ASGI app with uvicorn on loopback in a background thread.

    ``port=0`` (the default) picks a free port; :attr:`url` is right once :meth:`start` returns,
    which it does when the socket accepts connections.
    """

    def __init__(
        self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once connections are accepted."""
        if self._thread is not None:
            msg = f"emulator server at {self.url} is already running"
            raise RuntimeError(msg)
        # log_config=None leaves the host process's logging alone.
        config = _config(self.app, self.host, self.port, self.log_level, log_config=None)
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(target=server.run, name="emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                msg = f"emulator server on {self.host} port {self.port} did not start"
                raise RuntimeError(msg)
            time.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True  # graceful shutdown is capped at a second, see _config
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
