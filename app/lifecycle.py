"""Lifecycle: open the tenants' stores, run the consumer loop and the API, stop cleanly.

A signal (SIGTERM, SIGINT or SIGHUP) only sets an event. Shutdown then stops
reading, lets the batches in flight commit and acknowledge, and gives up on
whatever has not finished by ``shutdown_timeout_s``: those entries stay pending
and another replica claims them, so nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from drainer.consumers.aio import wait_or_stop
from drainer.consumers.group import RedisClient
from drainer.consumers.options import ConsumerOptions
from drainer.consumers.supervisor import Supervisor
from drainer.settings import Settings
from drainer.store import Store, make_redis
from drainer.telemetry import Telemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace import SpanProcessor

log = logging.getLogger("drainer")

STARTUP_RETRY_S = 1.0
STARTUP_RETRY_MAX_S = 15.0
# SIGHUP stops gracefully like SIGTERM: a reload would have to swap pools and
# workers under batches in flight, while a restart drains them and the next
# process reads the new settings (docs/operations.md).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StartupAborted(Exception):
    """A stop was requested while waiting for Redis or the database at start-up."""


class StartupStatus:
    """What start-up waits for now; the API's starting phase reports it (``api.app``)."""

    def __init__(self) -> None:
        self.waiting_for = "the tenants' stores to open"


def consumer_options(settings: Settings) -> ConsumerOptions:
    """The consumer loop's options from the ``[drainer]`` settings."""
    d = settings.drainer
    return ConsumerOptions(
        group=d.consumer_group,
        consumer=d.consumer_name,
        max_read_count=d.max_read_count,
        loop_interval_ms=d.loop_interval,
        idle_poll_max_ms=d.idle_poll_max_ms,
        claim_min_idle_ms=d.claim_min_idle_ms,
        slow_batch_ms=d.slow_batch_ms,
        retry_backoff_base_ms=d.retry_backoff_base_ms,
        retry_backoff_max_ms=d.retry_backoff_max_ms,
        max_concurrent_partitions=d.max_concurrent_partitions,
        max_batch_bytes=d.max_batch_bytes,
        consumer_sweep_idle_ms=d.consumer_sweep_idle_ms,
        consumer_sweep_interval_ms=d.consumer_sweep_interval_ms,
        honour_hyperswitch_lock=d.honour_hyperswitch_lock,
    )


async def open_stores(
    settings: Settings,
    *,
    redis: RedisClient | None = None,
    stop: asyncio.Event | None = None,
    status: StartupStatus | None = None,
) -> dict[str, Store]:
    """One store per tenant, waiting (with backoff) while Redis or the database is down."""
    redis = redis if redis is not None else make_redis(settings.redis)
    stop = stop or asyncio.Event()
    stores: dict[str, Store] = {}
    try:
        for tenant in settings.tenants():
            delay_s = STARTUP_RETRY_S
            while tenant.id not in stores:
                if status is not None:
                    status.waiting_for = f"tenant {tenant.id} to open"
                try:
                    await redis.ping()
                    stores[tenant.id] = await Store.create(settings, tenant, redis=redis)
                except (OSError, TimeoutError, RedisError, DBAPIError) as exc:
                    what = _failed_target(settings, exc)
                    if isinstance(exc, DBAPIError) and _never_fixes_itself(exc):
                        # a missing role or database, a wrong password: retrying cannot help
                        raise ValueError(f"tenant {tenant.id}: {what}: {_short(exc)}") from None
                    if status is not None:
                        status.waiting_for = f"tenant {tenant.id}: {what}: {_short(exc)}"
                    log.warning(
                        "tenant %s: cannot start yet: %s: %s; retrying in %.0fs",
                        tenant.id,
                        what,
                        _short(exc),
                        delay_s,
                    )
                    await wait_or_stop(stop, delay_s)
                    if stop.is_set():
                        raise StartupAborted(str(exc)) from exc
                    delay_s = min(delay_s * 2, STARTUP_RETRY_MAX_S)
    except BaseException:
        for store in stores.values():
            await store.close()
        await redis.aclose()
        raise
    return stores


#: SQLSTATE classes at connect time that no retry fixes: authorization (28: bad password,
#: no such role), invalid catalog (3D: no such database), invalid schema (3F).
STARTUP_PERMANENT_SQLSTATE_CLASSES = frozenset({"28", "3D", "3F"})


def _never_fixes_itself(exc: DBAPIError) -> bool:
    from drainer.db.executor import is_permanent, sqlstate_of

    if exc.connection_invalidated:
        return False
    code = sqlstate_of(exc)
    fatal = code is not None and code[:2] in STARTUP_PERMANENT_SQLSTATE_CLASSES
    return fatal or is_permanent(exc)


def _failed_target(settings: Settings, exc: BaseException) -> str:
    """Which server failed, named without credentials: the database or Redis."""
    if isinstance(exc, RedisError):
        return f"Redis {_redis_target(settings)}"
    url = make_url(settings.master_database.sqlalchemy_url())
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    return f"database {where} as {url.username or '?'}"


def _redis_target(settings: Settings) -> str:
    redis = settings.redis
    if redis.cluster_enabled:
        return "cluster " + ", ".join(redis.cluster_urls)
    try:
        url = make_url(redis.redis_url())
    except Exception:  # a unix socket or an unusual form: name no part of it
        return "(as configured)"
    return f"{url.host or 'localhost'}:{url.port or 6379}/{url.database or 0}"


def _short(exc: BaseException) -> str:
    """The error's own message, without SQLAlchemy's class prefix and background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    text = text.split(">: ", 1)[-1]
    return text.split("\n(Background on this error", 1)[0].strip() or type(exc).__name__


class Drainer:
    """The drainer of a set of tenant stores: consumer loop plus operator API."""

    def __init__(
        self,
        settings: Settings,
        stores: Mapping[str, Store],
        *,
        burst: bool = False,
        serve_api: bool | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        if not stores:
            raise ValueError("the drainer needs at least one tenant store")
        self.settings = settings
        self.stores = dict(stores)
        self.redis = next(iter(self.stores.values())).redis
        self.burst = burst
        self.serve_api = settings.server.enabled if serve_api is None else serve_api
        self.options = consumer_options(settings)
        self.supervisor = Supervisor(
            [s.pipeline for s in self.stores.values()], self.redis, self.options, burst=burst
        )
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self.stop_reason: str | None = None
        self.server: Any = None
        # set by run_drainer when the API was already serving during start-up
        self.server_task: asyncio.Task[None] | None = None
        # metrics and traces; span_processors add receivers of spans (tests, embedding)
        self.telemetry = Telemetry(
            settings, self.stores, span_processors=span_processors, metric_readers=metric_readers
        )

    def request_stop(self, reason: str = "requested") -> None:
        """Begin a graceful shutdown (idempotent; safe from a signal handler)."""
        if not self._stop.is_set():
            self.stop_reason = reason
            log.info("shutdown requested (%s): finishing batches in flight", reason)
            self.telemetry.metrics.shutdown_signals.add(1, {"reason": reason})
            self.telemetry.shutdown_requested()
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Run until a stop is requested (or, in burst mode, the streams are drained)."""
        consumer = asyncio.create_task(self.supervisor.run(), name="consumer-loop")
        server_task = self.server_task
        if self.serve_api and server_task is None:
            self.server = self._make_server()
            server_task = asyncio.create_task(self.server.serve(), name="api-server")
        stop_wait = asyncio.create_task(self._stop.wait(), name="stop-wait")
        # held and awaited below; it logs its own failures and never ends by itself
        monitor = asyncio.create_task(self.telemetry.run(self._stop), name="telemetry")
        watched = {consumer, stop_wait} | ({server_task} if server_task else set())
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if server_task in done and not self._stop.is_set():
                self.request_stop("api server stopped")
            if consumer in done and not self._stop.is_set():
                self.request_stop("burst complete" if self.burst else "consumer loop ended")
            await self._drain(consumer)
        finally:
            stop_wait.cancel()
            monitor.cancel()
            await asyncio.gather(stop_wait, monitor, return_exceptions=True)
            if server_task is not None:
                self.server.should_exit = True
                await asyncio.gather(server_task, return_exceptions=True)
        if consumer.done() and not consumer.cancelled() and consumer.exception():
            raise consumer.exception()  # type: ignore[misc]

    async def _drain(self, consumer: asyncio.Task[None]) -> None:
        self.supervisor.stop()
        started = time.monotonic()
        deadline = started + self.settings.drainer.shutdown_timeout_s
        interval_s = self.settings.drainer.shutdown_interval / 1000
        while not consumer.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning(
                    "shutdown deadline of %.1fs passed: abandoning batches in flight; "
                    "their entries stay pending and will be claimed",
                    self.settings.drainer.shutdown_timeout_s,
                )
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
                break
            await asyncio.wait({consumer}, timeout=min(interval_s, remaining))
            if not consumer.done():
                log.info(
                    "shutdown: waiting for batches in flight (%.1fs left)",
                    deadline - time.monotonic(),
                )
        elapsed_s = time.monotonic() - started
        log.info("consumer loop stopped in %.2fs", elapsed_s)
        self.telemetry.metrics.cleanup_seconds.record(elapsed_s)
        clean = not consumer.cancelled() and consumer.exception() is None  # every batch finished
        if clean:
            self.telemetry.metrics.successful_shutdowns.add(1)
        self.telemetry.shutdown_finished(elapsed_s, clean=clean)

    def _make_server(self) -> Any:
        from drainer.api.app import create_app

        return make_server(self.settings, create_app(self))

    async def close(self) -> None:
        """Flush telemetry, close every store's pool and the shared Redis client."""
        self.telemetry.shutdown()
        for store in self.stores.values():
            await store.close()
        await self.redis.aclose()


def make_server(settings: Settings, app: Any) -> Any:
    """Uvicorn serving ``app`` on the drainer's loop; the drainer owns the signals."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        def install_signal_handlers(self) -> None:
            return None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = settings.server
    config = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return EmbeddedServer(config)


def bind_listener(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound now: a port in use fails start-up with one line."""
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


async def _serve_during_startup(
    settings: Settings, status: StartupStatus
) -> tuple[Any, Any, asyncio.Task[None]]:
    """Bind and serve the starting-phase API; it switches to the real app later."""
    from drainer.api.app import StartupDispatcher

    sock = bind_listener(settings.server.host, settings.server.port)
    dispatcher = StartupDispatcher(status)
    server = make_server(settings, dispatcher)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="api-server")
    return dispatcher, server, task


async def _stop_server(server: Any, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await asyncio.gather(task, return_exceptions=True)


async def start_drainer(
    stores: Mapping[str, Store], settings: Settings, *, burst: bool = False
) -> None:
    """Run the drainer on open stores until stopped (like Hyperswitch's ``start_drainer``)."""
    drainer = Drainer(settings, stores, burst=burst)
    await drainer.run()


async def run_drainer(settings: Settings, *, burst: bool = False) -> int:
    """Serve the API, open the stores, run with signal handling, close; returns the exit code.

    With ``[server] enabled`` the API is bound before the first store attempt and
    answers "starting" (``api.app.StartupDispatcher``) while start-up retries, so
    liveness probes pass; the real app takes over on the same socket once the
    stores are open. A port in use is a ``ValueError`` naming it.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    holder: dict[str, Drainer] = {}

    def on_signal(name: str) -> None:
        stop.set()
        if "drainer" in holder:
            holder["drainer"].request_stop(name)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        status = StartupStatus()
        early: tuple[Any, Any, asyncio.Task[None]] | None = None
        if settings.server.enabled:
            # bound before the first store attempt: probes answer "starting" meanwhile
            early = await _serve_during_startup(settings, status)
        try:
            stores = await open_stores(settings, stop=stop, status=status)
        except BaseException as exc:
            if early is not None:
                await _stop_server(early[1], early[2])
            if isinstance(exc, StartupAborted):
                log.info("stopped before start-up finished")
                return 0
            raise
        # Start-up (imports, reflection) left many long-lived objects: freezing them
        # keeps the collector's full passes short while draining (docs/performance.md).
        gc.freeze()
        drainer = Drainer(settings, stores, burst=burst)
        holder["drainer"] = drainer
        if early is not None:
            from drainer.api.app import create_app

            dispatcher, drainer.server, drainer.server_task = early
            dispatcher.app = create_app(drainer)
        if stop.is_set():
            drainer.request_stop("signal during start-up")
        try:
            await drainer.run()
        finally:
            await drainer.close()
        return 0
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
