"""The operator API's HTTP server: uvicorn on the drainer's event loop, on a socket bound first.

The socket is bound before anything else starts, so a port in use fails start-up
with one line instead of uvicorn's ``sys.exit`` inside a task. The drainer owns
the signals: the server installs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from drainer.settings import ServerSettings


class _Server(uvicorn.Server):
    """Uvicorn without signal handling (the drainer's own handlers stop it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_listener(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound now: a port in use is a ``ValueError`` naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} on {host} is in use") from None
        raise ValueError(f"cannot listen on port {port} on {host}: {exc.strerror}") from None
    return sock


class ApiServer:
    """Serves an ASGI app on a socket bound when it is made; stopped by :meth:`stop`."""

    def __init__(
        self, settings: ServerSettings, app: Any, *, listener: socket.socket | None = None
    ) -> None:
        """``listener``: a socket bound already (a worker's, from ``drainer.workers``).

        Without it ``[server] host:port`` is bound now.
        """
        if listener is None:
            self._socket = bind_listener(settings.host, settings.port)
            host, port = settings.host, settings.port
        else:
            self._socket = listener
            host, port = listener.getsockname()[:2]
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = _Server(config)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Begin serving; the task ends when the server stops (or fails)."""
        if self.task is None:
            self.task = asyncio.create_task(
                self._server.serve(sockets=[self._socket]), name="api-server"
            )
        return self.task

    async def stop(self) -> None:
        """Stop serving and wait for it (idempotent); a failure of the server is raised."""
        self._server.should_exit = True
        if self.task is None:
            self._socket.close()
            return
        await asyncio.wait({self.task})
        if not self.task.cancelled() and (error := self.task.exception()) is not None:
            raise error
