"""The composition root: settings → telemetry → stores → drainer → API server → signals.

Everything ``drainer run`` is made of is built here, once, in that order, and given
to what uses it: the stores get their telemetry observers when they are built, the
drainer gets its stores and telemetry, the API gets the drainer. Nothing below this
module imports it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from drainer.api.app import StartupDispatcher, create_app
from drainer.consumers.observe import DrainObserver
from drainer.db.models import ModelRegistry
from drainer.lifecycle import Drainer, StartupAborted, StartupStatus, open_stores
from drainer.server import ApiServer
from drainer.settings import Settings
from drainer.store import Store
from drainer.telemetry import Telemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace import SpanProcessor

log = logging.getLogger("drainer")

# SIGHUP stops gracefully like SIGTERM: a reload would have to swap pools and
# workers under batches in flight, while a restart drains them and the next
# process reads the new settings (docs/operations.md).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def open_drainer(
    settings: Settings,
    *,
    burst: bool = False,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    stop: asyncio.Event | None = None,
    status: StartupStatus | None = None,
    wrap_observer: Callable[[DrainObserver], DrainObserver] | None = None,
) -> Drainer:
    """Telemetry, then every tenant's store observed by it, then the drainer over them.

    ``span_processors`` and ``metric_readers`` add receivers of spans and metrics
    (tests, embedding); ``wrap_observer`` puts an observer of the caller's around each
    tenant's (the demo counts what is committed). Waits while Redis or the database is
    down (``open_stores``).
    """
    telemetry = Telemetry(settings, span_processors=span_processors, metric_readers=metric_readers)

    def observe(tenant_id: str, registry: ModelRegistry) -> DrainObserver:
        observer = telemetry.observer(tenant_id, registry)
        return observer if wrap_observer is None else wrap_observer(observer)

    try:
        stores = await open_stores(settings, stop=stop, status=status, observe=observe)
    except BaseException:
        telemetry.shutdown()
        raise
    return Drainer(settings, stores, telemetry=telemetry, burst=burst)


def start_api(drainer: Drainer) -> ApiServer | None:
    """The operator API over ``drainer``, bound and serving, when ``[server] enabled``."""
    if not drainer.settings.server.enabled:
        return None
    server = ApiServer(drainer.settings.server, create_app(drainer))
    server.start()
    return server


async def serve(drainer: Drainer, server: ApiServer | None) -> None:
    """Run ``drainer`` with ``server`` (already serving, or None) alongside; stop it after."""
    try:
        await drainer.run(alongside=server.task if server is not None else None)
    finally:
        if server is not None:
            await server.stop()


async def start_drainer(
    stores: Mapping[str, Store], settings: Settings, *, burst: bool = False
) -> None:
    """Run the drainer on open stores until stopped (like Hyperswitch's ``start_drainer``).

    Serves the operator API when ``[server] enabled``. The stores are the caller's:
    they stay open. Build them with ``observe=telemetry.observer`` and pass that
    telemetry to a :class:`Drainer` of your own for per-batch metrics and traces.
    """
    drainer = Drainer(settings, stores, burst=burst)
    await serve(drainer, start_api(drainer))


async def run_drainer(
    settings: Settings, *, burst: bool = False, listener: socket.socket | None = None
) -> int:
    """What ``drainer run`` does: serve the API, open the stores, drain until a signal.

    With ``[server] enabled`` the API is bound before the first store attempt and
    answers "starting" (``drainer.api.app.StartupDispatcher``) while start-up retries,
    so liveness probes pass; the real app takes over on the same socket once the
    stores are open. A port in use is a ``ValueError`` naming it. ``listener`` serves
    the API on a socket bound already instead of ``[server] host:port`` (a worker of
    ``drainer run --workers``, :mod:`drainer.workers`). Returns the exit code.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    running: list[Drainer] = []

    def on_signal(name: str) -> None:
        stop.set()
        for drainer in running:
            drainer.request_stop(name)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        status = StartupStatus()
        dispatcher = StartupDispatcher(status)
        server = (
            ApiServer(settings.server, dispatcher, listener=listener)
            if settings.server.enabled
            else None
        )
        if server is not None:
            # serving before the first store attempt: probes answer "starting" meanwhile
            server.start()
        try:
            drainer = await open_drainer(settings, burst=burst, stop=stop, status=status)
        except BaseException as exc:
            if server is not None:
                await server.stop()
            if isinstance(exc, StartupAborted):
                log.info("stopped before start-up finished")
                return 0
            raise
        # Start-up (imports, reflection) left many long-lived objects: freezing them
        # keeps the collector's full passes short while draining (docs/performance.md).
        gc.freeze()
        running.append(drainer)
        dispatcher.app = create_app(drainer)
        if stop.is_set():
            drainer.request_stop("signal during start-up")
        try:
            await serve(drainer, server)
        finally:
            await drainer.close()
        return 0
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
