"""One worker process of ``drainer run --workers N``: what its parent tells it, and its run.

The parent side (binding, spawning, supervising, the one operator API) is
:mod:`drainer.workers`; this module is what every ``drainer run`` imports to learn
whether it is a worker, so it stays small: the parent's pool, its HTTP relay
(:mod:`drainer.worker_api`) and uvicorn are not on the way to a worker's (or a single
process's) first read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

from drainer.main import run_drainer
from drainer.settings import Settings

# the logger of the feature, parent and workers alike
log = logging.getLogger("drainer.workers")

#: The variable that makes ``drainer run`` a worker of a parent (internal: set by it).
WORKER_ENV = "DRAINER_WORKER"
#: ``drainer run``'s exit code for start-up problems (bad settings, cannot start).
STARTUP_FAILED_EXIT = 2


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the parent tells a worker process (JSON in :data:`WORKER_ENV`)."""

    worker: str
    lifeline_fd: int
    listen_fd: int | None
    error_file: str

    def to_env(self) -> str:
        """The value of :data:`WORKER_ENV`."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WorkerSpec | None:
        """The spec this process was started with, or None when it is not a worker."""
        raw = environ.get(WORKER_ENV)
        if raw is None:
            return None
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{WORKER_ENV} is set by `drainer run --workers` for its workers; unset it ({exc})"
            ) from None

    def report_startup_error(self, message: str) -> None:
        """Tell the parent why this worker cannot start (it logs it once, and fails)."""
        Path(self.error_file).write_text(message)


class _WorkerTag(logging.Filter):
    """Adds ``worker=<id>`` to every record (a field of text and JSON lines alike)."""

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


def tag_logs(worker: str) -> None:
    """Make every log line of this worker process say which worker wrote it."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerTag(worker))


async def run_worker(settings: Settings, spec: WorkerSpec, *, burst: bool = False) -> int:
    """A worker process: ``drainer run`` on the parent's socket, stopping if the parent dies."""
    loop = asyncio.get_running_loop()

    def parent_gone() -> None:
        loop.remove_reader(spec.lifeline_fd)
        log.warning("the parent process is gone: stopping")
        # the stop path of a signal: finish the batches in flight, then exit
        os.kill(os.getpid(), signal.SIGTERM)

    loop.add_reader(spec.lifeline_fd, parent_gone)
    listener = socket.socket(fileno=spec.listen_fd) if spec.listen_fd is not None else None
    try:
        return await run_drainer(settings, burst=burst, listener=listener)
    finally:
        loop.remove_reader(spec.lifeline_fd)
