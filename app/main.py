"""The composition root: settings → telemetry → stores → drainer → API server → signals.

Everything ``drainer run`` is made of is built here, once, in that order, and given
to what uses it: the stores get their telemetry observers when they are built, the
drainer gets its stores and telemetry, the API gets the drainer. Nothing below this
module imports it.

The API's socket is the exception to that order: it is bound and answering "starting"
before the first store attempt, and the FastAPI app behind it is built last, once the
partition workers read (:func:`install_app`): FastAPI is not on the way to the first
read, and with ``[server] enabled = false`` neither it nor uvicorn is imported.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from drainer.api.startup import StartupDispatcher
from drainer.consumers.aio import cancel_and_wait
from drainer.consumers.observe import DrainObserver
from drainer.db.models import ModelRegistry
from drainer.lifecycle import Drainer, StartupAborted, StartupStatus, open_stores
from drainer.settings import Settings
from drainer.store import Store
from drainer.telemetry import Telemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace import SpanProcessor

    from drainer.server import ApiServer

log = logging.getLogger("drainer")

#: Allocations (less deallocations) between two young-generation collections while
#: draining; CPython's default is 700. A batch of 500 entries makes about 5,000
#: short-lived objects, freed when the batch ends: at 700 the collector ran several
#: times per batch and found almost nothing to collect (docs/performance.md).
GC_YOUNG_THRESHOLD = 50_000

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
        telemetry.shutdown_within()
        raise
    return Drainer(settings, stores, telemetry=telemetry, burst=burst)


def start_api(drainer: Drainer) -> ApiServer | None:
    """The operator API over ``drainer``, bound and serving, when ``[server] enabled``."""
    if not drainer.settings.server.enabled:
        return None
    # FastAPI and uvicorn load only where an API is served
    from drainer.api.app import create_app
    from drainer.server import ApiServer

    server = ApiServer(drainer.settings.server, create_app(drainer))
    server.start()
    return server


async def serve(
    drainer: Drainer, server: ApiServer | None, *, dispatcher: StartupDispatcher | None = None
) -> None:
    """Run ``drainer`` with ``server`` (already serving, or None) alongside; stop it after.

    ``dispatcher``: the app ``server`` serves, still answering "starting"; the real app
    replaces it once the drainer's partition workers have started (:func:`install_app`).
    """
    installing = (
        asyncio.create_task(install_app(drainer, dispatcher), name="api-app")
        if dispatcher is not None
        else None
    )
    try:
        await drainer.run(alongside=server.task if server is not None else None)
    finally:
        try:
            if installing is not None:
                await cancel_and_wait(installing)  # a failure to build the app is raised here
        finally:
            if server is not None:
                await server.stop()


async def install_app(drainer: Drainer, dispatcher: StartupDispatcher) -> None:
    """Build the operator API's app and hand ``dispatcher``'s requests to it, once draining.

    Importing FastAPI and building the app costs about 0.3 s of CPU and the drain does
    not need it, so it waits for :attr:`Drainer.started`: the first reads are sent by
    then, and their replies wait the ~0.3 s this holds the event loop (a thread would
    share the GIL with the workers all the same). Until then probes keep answering
    "starting", readiness 503. Should building it fail, the drainer stops rather than
    answer "starting" for ever; the error is raised by :func:`serve`.
    """
    await drainer.started.wait()
    try:
        from drainer.api.app import create_app

        dispatcher.app = create_app(drainer)
    except Exception:
        log.exception("the operator API could not be built")
        drainer.request_stop("operator API failed")
        raise
    # FastAPI's and pydantic's objects live as long as the process: out of the
    # collector's full passes, as start-up's own are (run_drainer)
    gc.freeze()


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
    answers "starting" (:class:`drainer.api.startup.StartupDispatcher`) while start-up
    retries and reflects the tables, so liveness probes pass; the real app takes over
    on the same socket once the partition workers have started (:func:`install_app`).
    With the server disabled neither FastAPI nor uvicorn is imported. A port in use is
    a ``ValueError`` naming it. ``listener`` serves the API on a socket bound already
    instead of ``[server] host:port`` (a worker of ``drainer run --workers``,
    :mod:`drainer.workers`). Returns the exit code.
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
        dispatcher: StartupDispatcher | None = None
        server: ApiServer | None = None
        if settings.server.enabled:
            from drainer.server import ApiServer  # uvicorn: only when the API is served

            dispatcher = StartupDispatcher(status)
            server = ApiServer(settings.server, dispatcher, listener=listener)
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
        _, middle, old = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
        running.append(drainer)
        status.waiting_for = "the partition workers to start"
        if stop.is_set():
            drainer.request_stop("signal during start-up")
        try:
            await serve(drainer, server, dispatcher=dispatcher)
        finally:
            await drainer.close()
        return 0
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
