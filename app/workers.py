"""``drainer run --workers N``: N consumer processes on one host behind one operator API.

The drainer is CPU-bound Python, so one process drains with one core. With
``--workers N`` (or ``[drainer] workers``) the process started is a *parent* that
drains nothing itself. It binds ``[server] port`` first (a port in use fails at once,
as for one process), opens the tenants' stores (a wait for Redis or the database, or
a tenant that cannot start, shows once, not N times), then starts N *workers*: each
a full ``drainer run`` (reads, claims, applies, acknowledges, over every partition)
as consumer ``<consumer_name>-w<i>``. The consumer groups' exclusive read keeps them
apart exactly as it keeps replicas on different hosts apart.

A worker learns what it is from :data:`~drainer.worker_process.WORKER_ENV` (a JSON
:class:`~drainer.worker_process.WorkerSpec`, read by every ``drainer run`` in
:mod:`drainer.worker_process`, which keeps this module off a worker's path) and
inherits two file descriptors from the parent:

- a listening socket on 127.0.0.1 the parent bound for it (the system picks the
  port), on which the worker serves its own API; the parent's API asks it
  (:mod:`drainer.worker_api`). The parent knows the port without being told, and a
  restarted worker serves on the same one;
- the read end of a *lifeline* pipe whose write end only the parent holds. When the
  parent dies, even by SIGKILL, the pipe reads end-of-file and the worker stops
  itself gracefully: no worker outlives its parent.

A worker that cannot start (the ``ValueError`` ``drainer run`` reports as "cannot
start") writes why to a file the parent named, and exits 2; the parent stops the
others and fails with that one line. A worker that dies otherwise is restarted with
backoff, under the same consumer name, so it first finishes the entries it held.
Workers run in their own session, so signals reach the parent only: it forwards them,
waits ``shutdown_timeout_s`` + :data:`WORKER_STOP_MARGIN_S`, then kills what is left
(their entries stay pending and are claimed later: nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from drainer.api.startup import StartupDispatcher
from drainer.consumers.aio import cancel_and_wait, wait_or_stop
from drainer.lifecycle import Drainer, StartupAborted, StartupStatus
from drainer.main import STOP_SIGNALS, open_drainer
from drainer.server import ApiServer, bind_listener
from drainer.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings
from drainer.worker_api import LOOPBACK, WorkerReplyError, WorkersFrontend, fetch
from drainer.worker_process import WORKER_ENV, WorkerSpec

log = logging.getLogger("drainer.workers")

#: Each worker's consumer name reaches it as the settings' own override.
CONSUMER_NAME_ENV = f"{ENV_PREFIX}DRAINER{ENV_NESTED_DELIMITER}CONSUMER_NAME"
#: First wait before a worker that died is started again; doubles up to the maximum.
WORKER_RESTART_BASE_S = 1.0
WORKER_RESTART_MAX_S = 30.0
#: A worker that ran this long before dying starts its backoff over.
WORKER_STABLE_S = 60.0
#: Deaths in a row after which the parent's liveness fails (it still restarts).
WORKER_CRASH_LOOP_FAILURES = 5
#: Beyond ``shutdown_timeout_s``: a worker's own closing (pools, telemetry flush).
WORKER_STOP_MARGIN_S = 10.0
#: How often a starting worker's API is tried until it answers.
WORKER_API_POLL_S = 0.2
WORKER_API_POLL_TIMEOUT_S = 1.0


def worker_id(index: int) -> str:
    """The id (and ``worker`` metric label) of the ``index``-th worker, from 1."""
    return f"w{index}"


def worker_consumer_name(base: str, index: int, count: int) -> str:
    """The consumer name of worker ``index`` of ``count``: ``base`` alone when one."""
    return base if count == 1 else f"{base}-{worker_id(index)}"


class WorkerStartupFailed(ValueError):
    """A worker could not start; the message is its own reason (``drainer: cannot start``)."""


class WorkerState(enum.StrEnum):
    """Where a worker is in its life."""

    STARTING = "starting"  # process started, its API has not answered yet
    RUNNING = "running"
    RESTARTING = "restarting"  # it died; waiting out the backoff
    STOPPING = "stopping"  # a stop was forwarded to it
    EXITED = "exited"  # stopped, or done (burst)
    FAILED = "failed"  # done with an error (burst), or could not start


def _how_it_ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Worker:
    """One worker: its process, started again whenever it dies, its consumer name and port."""

    def __init__(
        self,
        index: int,
        *,
        consumer: str,
        command: Sequence[str],
        listener: socket.socket | None,
        lifeline_fd: int,
        error_file: Path,
        stop_timeout_s: float,
        burst: bool,
    ) -> None:
        self.id = worker_id(index)
        self.consumer = consumer
        self.command = list(command)
        self.listener = listener
        self.port: int | None = listener.getsockname()[1] if listener is not None else None
        self.lifeline_fd = lifeline_fd
        self.error_file = error_file
        self.stop_timeout_s = stop_timeout_s
        self.burst = burst
        self.state = WorkerState.STARTING
        self.pid: int | None = None
        self.restarts = 0
        self.failures = 0  # deaths in a row
        self.exit_code: int | None = None  # how its last process ended, once it is done
        self.killed = False  # killed at the stop deadline
        self.stop_signal = signal.SIGTERM
        #: Set once its first process was started (or failed to be).
        self.spawned = asyncio.Event()

    @property
    def running(self) -> bool:
        """True while its process runs and its API answered since it started."""
        return self.state is WorkerState.RUNNING

    @property
    def done(self) -> bool:
        """True once it has ended for good."""
        return self.state in (WorkerState.EXITED, WorkerState.FAILED)

    def liveness(self) -> tuple[bool, str | None]:
        """Whether it counts as alive while it is not running, and why (the parent's /health)."""
        starting_again = self.state in (WorkerState.RESTARTING, WorkerState.STARTING)
        if starting_again and self.failures >= WORKER_CRASH_LOOP_FAILURES:
            return False, f"crash loop: died {self.failures} times in a row"
        if self.state is WorkerState.RESTARTING:
            return True, f"restarting after dying ({self.failures} in a row)"
        if self.state is WorkerState.FAILED:
            return False, "failed" if self.exit_code is None else _how_it_ended(self.exit_code)
        return True, self.state.value

    def _spec(self) -> WorkerSpec:
        return WorkerSpec(
            worker=self.id,
            lifeline_fd=self.lifeline_fd,
            listen_fd=self.listener.fileno() if self.listener is not None else None,
            error_file=str(self.error_file),
        )

    async def _spawn(self) -> asyncio.subprocess.Process:
        spec = self._spec()
        env = {**os.environ, CONSUMER_NAME_ENV: self.consumer, WORKER_ENV: spec.to_env()}
        fds = [spec.lifeline_fd] + ([spec.listen_fd] if spec.listen_fd is not None else [])
        self.error_file.unlink(missing_ok=True)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                pass_fds=fds,
                stdin=asyncio.subprocess.DEVNULL,
                # its own session: a terminal's Ctrl-C reaches the parent only, which forwards it
                start_new_session=True,
            )
        finally:
            self.spawned.set()  # tried, whether or not a process came of it
        self.pid = process.pid
        self.state = WorkerState.RUNNING if self.port is None else WorkerState.STARTING
        log.info("worker %s started (pid %d, consumer %s)", self.id, process.pid, self.consumer)
        return process

    async def _await_api(self) -> None:
        """Mark the worker running once its API answers anything."""
        assert self.port is not None
        while self.state is WorkerState.STARTING:
            try:
                await fetch(self.port, "/health", timeout_s=WORKER_API_POLL_TIMEOUT_S)
            except (OSError, TimeoutError, WorkerReplyError):
                await asyncio.sleep(WORKER_API_POLL_S)
                continue
            if self.state is WorkerState.STARTING:
                self.state = WorkerState.RUNNING

    async def _stop_process(
        self, process: asyncio.subprocess.Process, ended: asyncio.Task[int]
    ) -> None:
        """Forward the stop signal; kill the process if it is still there at the deadline."""
        self.state = WorkerState.STOPPING
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(self.stop_signal)
        done, _ = await asyncio.wait({ended}, timeout=self.stop_timeout_s)
        if not done:
            log.warning(
                "worker %s (pid %d) did not stop within %.0fs: killing it; "
                "its entries stay pending and will be claimed",
                self.id,
                process.pid,
                self.stop_timeout_s,
            )
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait({ended})

    async def _supervise(self, process: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
        """Wait for the process to end; on ``stop`` forward the signal and wait for it."""
        ended = asyncio.create_task(process.wait(), name=f"worker-{self.id}-wait")
        stopping = asyncio.create_task(stop.wait(), name=f"worker-{self.id}-stop")
        helpers: list[asyncio.Task[Any]] = [stopping]
        if self.port is not None:
            helpers.append(asyncio.create_task(self._await_api(), name=f"worker-{self.id}-api"))
        try:
            await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                await self._stop_process(process, ended)
            return await ended
        finally:
            if not ended.done():  # cancelled: never leave a worker behind
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait({ended})
            await cancel_and_wait(*helpers)

    def _startup_error(self) -> str | None:
        try:
            message = self.error_file.read_text().strip()
        except FileNotFoundError:
            return None
        self.error_file.unlink(missing_ok=True)
        return message or "could not start"

    async def run(self, stop: asyncio.Event) -> None:
        """Run the worker until ``stop`` (or, in burst mode, until its process ends).

        Raises :class:`WorkerStartupFailed` when the worker cannot start.
        """
        delay_s = WORKER_RESTART_BASE_S
        while not stop.is_set():
            started = time.monotonic()
            try:
                process = await self._spawn()
            except OSError as exc:  # no process at all (fork failed): a death like any other
                code, pid, how = None, None, f"could not be started ({exc})"
            else:
                code, pid = await self._supervise(process, stop), process.pid
                how = _how_it_ended(code)
            ran_s = time.monotonic() - started
            self.pid = None
            if (message := self._startup_error()) is not None:
                self.state, self.exit_code = WorkerState.FAILED, code
                raise WorkerStartupFailed(f"worker {self.id}: {message}")
            if stop.is_set() or self.burst:
                # a worker the forwarded signal ended before its handlers were in place
                # had read nothing yet: that stop is as clean as a drained one
                clean = code == 0 or (stop.is_set() and code == -self.stop_signal)
                self.exit_code = 0 if clean else code
                self.state = WorkerState.EXITED if clean else WorkerState.FAILED
                if not clean:
                    log.error("worker %s (pid %s) %s", self.id, pid, how)
                return
            if ran_s >= WORKER_STABLE_S:
                self.failures, delay_s = 0, WORKER_RESTART_BASE_S
            self.failures += 1
            self.state = WorkerState.RESTARTING
            log.error(
                "worker %s (pid %s, consumer %s) %s after %.1fs; restarting it in %.1fs",
                self.id,
                pid,
                self.consumer,
                how,
                ran_s,
                delay_s,
            )
            await wait_or_stop(stop, delay_s)
            delay_s = min(delay_s * 2, WORKER_RESTART_MAX_S)
            if not stop.is_set():
                self.restarts += 1
        if not self.done:
            self.state, self.exit_code = WorkerState.EXITED, 0


class WorkerPool:
    """The workers of one parent: their sockets, their lifeline, their supervision."""

    def __init__(
        self, settings: Settings, *, count: int, burst: bool, config: Path | None, api: bool
    ) -> None:
        """``api``: give every worker a loopback listener for its own API."""
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self._dir = Path(tempfile.mkdtemp(prefix="drainer-workers-"))
        # the parent holds the write end and never writes: it closes when the parent dies
        self._lifeline_read, self._lifeline_write = os.pipe()
        command = [sys.executable, "-m", "drainer", "run"]
        if config is not None:
            command += ["--config", str(config.resolve())]
        if burst:
            command.append("--burst")
        stop_timeout_s = settings.drainer.shutdown_timeout_s + WORKER_STOP_MARGIN_S
        self._listeners: list[socket.socket] = []
        self.workers: list[Worker] = []
        try:
            for index in range(1, count + 1):
                listener = bind_listener(LOOPBACK, 0) if api else None
                if listener is not None:
                    self._listeners.append(listener)
                self.workers.append(
                    Worker(
                        index,
                        consumer=worker_consumer_name(settings.drainer.consumer_name, index, count),
                        command=command,
                        listener=listener,
                        lifeline_fd=self._lifeline_read,
                        error_file=self._dir / f"{worker_id(index)}.error",
                        stop_timeout_s=stop_timeout_s,
                        burst=burst,
                    )
                )
        except BaseException:
            self.close()
            raise

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    async def spawned(self) -> None:
        """Return once every worker's first process was started (or failed to be)."""
        await asyncio.gather(*(worker.spawned.wait() for worker in self.workers))

    def request_stop(self, sig: signal.Signals = signal.SIGTERM, reason: str = "") -> None:
        """Stop every worker gracefully with ``sig`` (idempotent; safe from a signal handler)."""
        if self._stop.is_set():
            return
        log.info(
            "stopping %d workers%s: forwarding %s",
            len(self.workers),
            f" ({reason})" if reason else "",
            sig.name,
        )
        for worker in self.workers:
            worker.stop_signal = sig
        self._stop.set()

    async def run(self) -> int:
        """Run every worker until a stop (or, in burst mode, until all have ended).

        Returns 0 when every worker ended cleanly, 1 when one failed or had to be
        killed; raises :class:`WorkerStartupFailed` when one could not start.
        """
        tasks = [
            asyncio.create_task(w.run(self._stop), name=f"worker-{w.id}") for w in self.workers
        ]
        try:
            pending: set[asyncio.Task[None]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                if any(not t.cancelled() and t.exception() is not None for t in done):
                    self.request_stop(reason="a worker failed")
        finally:
            await cancel_and_wait(*(t for t in tasks if not t.done()))
        for task in tasks:
            if (error := task.exception()) is not None:
                raise error
        failed = [w.id for w in self.workers if w.exit_code != 0 or w.killed]
        if failed:
            log.error("workers %s did not end cleanly", ", ".join(failed))
            return 1
        log.info("all %d workers stopped", len(self.workers))
        return 0

    def close(self) -> None:
        """Release the sockets, the lifeline and the scratch directory (idempotent)."""
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        for fd in (self._lifeline_read, self._lifeline_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._lifeline_read = self._lifeline_write = -1
        shutil.rmtree(self._dir, ignore_errors=True)


async def run_workers(
    settings: Settings, *, count: int, burst: bool = False, config: Path | None = None
) -> int:
    """What ``drainer run --workers N`` does in the parent; returns the exit code.

    Binds and serves the operator API first (a port in use is the ``ValueError`` of
    one process), opens the tenants' stores (the API's, and the check that they can
    start at all), then starts and supervises the workers until a signal (or, in burst
    mode, until every worker is done). The API answers "starting" until every worker
    was started; its real app is built only then (:func:`_install_frontend`).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    pools: list[WorkerPool] = []

    def on_signal(sig: signal.Signals) -> None:
        stop.set()
        for pool in pools:
            pool.request_stop(sig)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        status = StartupStatus()
        dispatcher = StartupDispatcher(status)
        server = ApiServer(settings.server, dispatcher) if settings.server.enabled else None
        if server is not None:
            server.start()  # answering "starting" while the stores open
        try:
            try:
                drainer = await open_drainer(settings, stop=stop, status=status)
            except StartupAborted:
                log.info("stopped before start-up finished")
                return 0
            try:
                if stop.is_set():
                    return 0  # a signal during start-up: no worker was started
                pool = WorkerPool(
                    settings, count=count, burst=burst, config=config, api=server is not None
                )
                pools.append(pool)
                try:
                    status.waiting_for = "the workers to start"
                    frontend = (
                        _install_frontend(pool, drainer, dispatcher) if server is not None else None
                    )
                    return await _run_pool(pool, server, frontend)
                finally:
                    pool.close()
            finally:
                await drainer.close()
        finally:
            if server is not None:
                await server.stop()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _registry_of(drainer: Drainer) -> Callable[[], Awaitable[bytes]]:
    """The parent's own metrics, rendered as they are.

    Not ``DrainerMetrics.render``: that re-reads the backlog from Redis for gauges the
    merge drops (every worker reports them).
    """
    registry = drainer.telemetry.metrics.registry

    async def render() -> bytes:
        return generate_latest(registry)

    return render


async def _install_frontend(
    pool: WorkerPool, drainer: Drainer, dispatcher: StartupDispatcher
) -> None:
    """The parent's app behind ``dispatcher``, built once every worker was started.

    Everything but the probes and metrics is the parent's own app (its stores answer
    ``/pending``, dead letters and replay); it drains nothing. Importing FastAPI and
    building it costs about 0.3 s of CPU, so it waits for the workers' processes to
    exist rather than delay them; probes answer "starting" until then. Should building
    it fail, the workers are stopped rather than the API answer "starting" for ever.
    """
    await pool.spawned()
    try:
        from drainer.api.app import create_app

        dispatcher.app = WorkersFrontend(
            pool,
            create_app(drainer),
            metrics_enabled=drainer.settings.telemetry.metrics_enabled,
            own_metrics=_registry_of(drainer),
        )
    except Exception:
        log.exception("the operator API could not be built")
        pool.request_stop(reason="the operator API could not be built")
        raise


async def _run_pool(
    pool: WorkerPool,
    server: ApiServer | None,
    frontend: Coroutine[Any, Any, None] | None = None,
) -> int:
    """Run the pool; the API server ending first (it failed) stops the workers.

    ``frontend`` (:func:`_install_frontend`) runs alongside; its failure is raised here.
    """
    workers = asyncio.create_task(pool.run(), name="workers")
    installing = asyncio.create_task(frontend, name="api-app") if frontend is not None else None
    watched: set[asyncio.Task[Any]] = {workers}
    if server is not None and server.task is not None:
        watched.add(server.task)
    try:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if workers not in done:
            pool.request_stop(reason="the API server stopped")
        return await workers
    finally:
        try:
            if not workers.done():
                await cancel_and_wait(workers)
        finally:
            if installing is not None:
                await cancel_and_wait(installing)
