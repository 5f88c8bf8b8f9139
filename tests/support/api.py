"""Run a drainer in-process with its operator API reachable through an httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx

from drainer.api.app import create_app
from drainer.lifecycle import Drainer
from drainer.main import open_drainer
from drainer.settings import Settings

BASE_URL = "http://drainer.test"
#: The one 5xx the API answers on purpose: a probe saying "not ready" (Kubernetes' contract).
PROBE_PREFIX = "/health"


class ServerError(AssertionError):
    """The API answered 5xx where it must not: the test fails, whatever it asserts."""


async def _no_server_errors(response: httpx.Response) -> None:
    status = response.status_code
    if status >= 500 and not (status == 503 and response.url.path.startswith(PROBE_PREFIX)):
        await response.aread()
        raise ServerError(
            f"{response.request.method} {response.url.path} answered {status}: "
            f"{response.text[:500]}"
        )


@contextlib.asynccontextmanager
async def api_client(
    settings: Settings,
    *,
    span_processors: Sequence[Any] = (),
    headers: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Drainer, httpx.AsyncClient]]:
    """A running drainer (consumer loop on this loop) and a client of its app (ASGI)."""
    drainer = await open_drainer(settings, span_processors=span_processors)
    task = asyncio.create_task(drainer.run(), name="drainer-under-test")
    transport = httpx.ASGITransport(app=create_app(drainer))
    client = httpx.AsyncClient(
        transport=transport,
        base_url=BASE_URL,
        headers=headers,
        event_hooks={"response": [_no_server_errors]},
    )
    # the audit logger at INFO, as it runs by default: a record it cannot write must show
    audit = logging.getLogger("drainer.audit")
    level = audit.level
    audit.setLevel(logging.INFO)
    try:
        yield drainer, client
    finally:
        audit.setLevel(level)
        await client.aclose()
        drainer.request_stop("test over")
        await task
        await drainer.close()


def free_port() -> int:
    """A TCP port nothing listens on right now (for a drainer subprocess's API)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    """A TCP port something listens on for the duration (a drainer must not get it)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port: int = busy.getsockname()[1]
        yield port
