"""Lifecycle: open the tenants' stores, run the consumer loop, stop cleanly.

A stop request (a signal, in ``drainer.main``) only sets an event. Shutdown then
stops reading, lets the batches in flight commit and acknowledge, and gives up on
whatever has not finished by ``shutdown_timeout_s``: those entries stay pending
and another replica claims them, so nothing is lost either way. The API server and
the signals are wired by the composition root, :mod:`drainer.main`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from drainer.consumers.aio import cancel_and_wait, wait_or_stop
from drainer.consumers.group import RedisClient
from drainer.consumers.supervisor import Supervisor
from drainer.db.executor import is_permanent, sqlstate_of
from drainer.settings import DEFAULT_DB_PORT, DEFAULT_REDIS_PORT, Settings
from drainer.store import ObserverFactory, Store, make_redis
from drainer.telemetry import Telemetry

log = logging.getLogger("drainer")

STARTUP_RETRY_S = 1.0
STARTUP_RETRY_MAX_S = 15.0


class StartupAborted(Exception):
    """A stop was requested while waiting for Redis or the database at start-up."""


class StartupStatus:
    """What start-up waits for now; the "starting" answers report it (``drainer.api.startup``)."""

    def __init__(self) -> None:
        self.waiting_for = "the tenants' stores to open"


async def open_stores(
    settings: Settings,
    *,
    redis: RedisClient | None = None,
    stop: asyncio.Event | None = None,
    status: StartupStatus | None = None,
    observe: ObserverFactory | None = None,
) -> dict[str, Store]:
    """One store per tenant, waiting (with backoff) while Redis or the database is down.

    ``observe`` makes each tenant's observer (``Telemetry.observer``).
    """
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
                    stores[tenant.id] = await Store.create(
                        settings, tenant, redis=redis, observe=observe
                    )
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
    where = f"{url.host or 'localhost'}:{url.port or DEFAULT_DB_PORT}/{url.database or ''}"
    return f"database {where} as {url.username or '?'}"


def _redis_target(settings: Settings) -> str:
    redis = settings.redis
    if redis.cluster_enabled:
        return "cluster " + ", ".join(redis.cluster_urls)
    try:
        url = make_url(redis.redis_url())
    except Exception:  # a unix socket or an unusual form: name no part of it
        return "(as configured)"
    return f"{url.host or 'localhost'}:{url.port or DEFAULT_REDIS_PORT}/{url.database or 0}"


def _short(exc: BaseException) -> str:
    """The error's own message, without SQLAlchemy's class prefix and background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    text = text.split(">: ", 1)[-1]
    return text.split("\n(Background on this error", 1)[0].strip() or type(exc).__name__


class Drainer:
    """The drainer of a set of tenant stores: the supervised consumer loop and its telemetry.

    It serves no API and handles no signal: :mod:`drainer.main` wires those around it.
    """

    def __init__(
        self,
        settings: Settings,
        stores: Mapping[str, Store],
        *,
        telemetry: Telemetry | None = None,
        burst: bool = False,
    ) -> None:
        """``telemetry`` is the one whose observers the stores were built with (else a new one)."""
        if not stores:
            raise ValueError("the drainer needs at least one tenant store")
        self.settings = settings
        self.stores = dict(stores)
        self.redis = next(iter(self.stores.values())).redis
        self.burst = burst
        self.options = settings.drainer.consumer_options()
        self.supervisor = Supervisor(
            [s.pipeline for s in self.stores.values()], self.redis, self.options, burst=burst
        )
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self.telemetry = telemetry if telemetry is not None else Telemetry(settings)
        self.telemetry.watch(self.stores)

    def request_stop(self, reason: str = "requested") -> None:
        """Begin a graceful shutdown (idempotent; safe from a signal handler)."""
        if not self._stop.is_set():
            log.info("shutdown requested (%s): finishing batches in flight", reason)
            self.telemetry.metrics.shutdown_signals.add(1, {"reason": reason})
            self.telemetry.shutdown_requested()
            self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    @property
    def started(self) -> asyncio.Event:
        """Set once :meth:`run` has started the partition workers (they are about to read).

        What is not needed to drain waits for it: ``drainer.main`` builds the operator
        API's app then, so its imports are not on the way to the first read.
        """
        return self.supervisor.started

    async def run(self, *, alongside: asyncio.Task[None] | None = None) -> None:
        """Run until a stop is requested (or, in burst mode, the streams are drained).

        ``alongside`` (the API server) stops the drainer when it ends first.
        """
        consumer = asyncio.create_task(self.supervisor.run(), name="consumer-loop")
        stop_wait = asyncio.create_task(self._stop.wait(), name="stop-wait")
        # held and awaited below; it logs its own failures and never ends by itself
        monitor = asyncio.create_task(self.telemetry.run(self._stop), name="telemetry")
        watched = {consumer, stop_wait} | ({alongside} if alongside is not None else set())
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if alongside in done and not self._stop.is_set():
                self.request_stop("api server stopped")
            if consumer in done and not self._stop.is_set():
                self.request_stop("burst complete" if self.burst else "consumer loop ended")
            await self._drain(consumer)
        finally:
            await cancel_and_wait(stop_wait, monitor)
        if not consumer.cancelled() and (error := consumer.exception()) is not None:
            raise error

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
                await asyncio.wait({consumer})
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

    async def close(self) -> None:
        """Flush telemetry, close every store's pool and the shared Redis client."""
        # off the event loop, and bounded: an unreachable collector must not hold the exit
        await asyncio.to_thread(self.telemetry.shutdown_within)
        for store in self.stores.values():
            await store.close()
        await self.redis.aclose()
