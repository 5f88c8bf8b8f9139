"""The one operator API of ``drainer run --workers N``: probes and metrics over every worker.

The parent process serves the API. Everything but three paths is the normal app
(:func:`drainer.api.app.create_app` over the parent's own stores: ``/pending``, dead
letters and replay need only Redis and the database). ``/health``, ``/health/ready``
and ``/metrics`` are answered here, from the worker processes: each worker serves
its own API on a loopback socket the parent bound for it (:mod:`drainer.workers`),
and :class:`WorkersFrontend` asks them all and combines the answers:

- liveness is 200 while every worker is alive (or being restarted, short of a crash
  loop) and its own ``/health`` says so;
- readiness is 200 when every worker's own ``/health/ready`` is 200;
- metrics are the workers' families merged (:func:`merge_metrics`), each series with a
  ``worker`` label, plus the parent's own (its operator actions and the workers' state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from drainer.api.responses import SafeJSONResponse
from drainer.metrics import PROMETHEUS_CONTENT_TYPE

LOOPBACK = "127.0.0.1"
#: How long one worker gets to answer a probe or a scrape relayed to it.
WORKER_REQUEST_TIMEOUT_S = 5.0
UNAVAILABLE = 503
#: The label that tells the workers' series apart.
WORKER_LABEL = "worker"
#: ``worker`` label of the parent's own series (what its API did, the workers' state).
PARENT_LABEL = "api"
#: The parent's own metric families that are shown: what only its API does (the
#: others, the backlog gauges among them, every worker reports already).
PARENT_FAMILIES = frozenset({"drainer_replays_total", "drainer_requeued_dead_letters_total"})

LIVENESS_PATH = "/health"
READINESS_PATH = "/health/ready"
METRICS_PATH = "/metrics"


class Worker(Protocol):
    """What the API reads of one worker (``drainer.workers.Worker``)."""

    @property
    def id(self) -> str:
        """``w1`` … ``wN``: the ``worker`` label of its series."""

    @property
    def consumer(self) -> str:
        """Its consumer name in the groups."""

    @property
    def pid(self) -> int | None:
        """Its process id now (None between processes)."""

    @property
    def state(self) -> str:
        """starting, running, restarting, stopping, exited or failed."""

    @property
    def running(self) -> bool:
        """True while its process runs and its API answered since it started."""

    @property
    def restarts(self) -> int:
        """Restarts after it died unexpectedly."""

    @property
    def port(self) -> int | None:
        """Its API's loopback port (None when the API is off)."""

    def liveness(self) -> tuple[bool, str | None]:
        """Whether it counts as alive while it is not running, and why."""


class WorkerPool(Protocol):
    """What the API reads of the set of workers (``drainer.workers.WorkerPool``)."""

    @property
    def workers(self) -> Sequence[Worker]:
        """Every worker, in order."""

    @property
    def started_at(self) -> float:
        """When the parent started them (Unix time)."""

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""


class WorkerReplyError(Exception):
    """A worker's answer could not be read as HTTP."""


@dataclass(frozen=True, slots=True)
class WorkerReply:
    """A worker's HTTP answer: status and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            raise WorkerReplyError("truncated chunked body")
        try:
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            raise WorkerReplyError(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            return bytes(out)
        if len(rest) < size:
            raise WorkerReplyError("truncated chunked body")
        out += rest[:size]
        body = rest[size + 2 :]


def parse_reply(raw: bytes) -> WorkerReply:
    """An HTTP/1.1 response read to its end (the request said ``Connection: close``)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise WorkerReplyError("incomplete HTTP response")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise WorkerReplyError(f"not an HTTP status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif (length := headers.get("content-length", "")).isdigit():
        if len(body) < int(length):
            raise WorkerReplyError("truncated body")
        body = body[: int(length)]
    return WorkerReply(int(parts[1]), body)


async def fetch(
    port: int, path: str, *, timeout_s: float = WORKER_REQUEST_TIMEOUT_S
) -> WorkerReply:
    """``GET path`` from a worker's API on the loopback ``port``.

    A plain HTTP/1.1 request on a fresh connection: loopback, a few a second at most,
    and no HTTP client among the service's dependencies. Raises ``OSError``,
    ``TimeoutError`` or :class:`WorkerReplyError`.
    """
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return parse_reply(raw)


# ---- metrics


@dataclass(slots=True)
class _Family:
    help_line: str | None = None
    type_line: str | None = None
    samples: list[str] = field(default_factory=list)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def with_label(sample: str, name: str, value: str) -> str:
    """A Prometheus sample line with ``name="value"`` put first among its labels."""
    label = f'{name}="{_escape_label(value)}"'
    # a metric name has no "{" and no space: whichever comes first ends it
    brace, space = sample.find("{"), sample.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        rest = sample[brace + 1 :]
        return f"{sample[: brace + 1]}{label}{'' if rest.startswith('}') else ','}{rest}"
    if space == -1:
        raise ValueError(f"not a sample line: {sample[:80]!r}")
    return f"{sample[:space]}{{{label}}}{sample[space:]}"


def _comment(line: str) -> tuple[str, str] | None:
    """(kind, family) of a ``# HELP`` or ``# TYPE`` line, else None."""
    parts = line.split(None, 3)
    if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
        return parts[1], parts[2]
    return None


def _sample_name(line: str) -> str:
    ends = [i for i in (line.find("{"), line.find(" ")) if i != -1]
    return line[: min(ends)] if ends else line


def merge_metrics(
    sources: Sequence[tuple[str, str]], *, only: Callable[[str, str], bool] | None = None
) -> str:
    """Prometheus texts of several processes as one, each series labelled ``worker``.

    ``sources`` are (worker label, exposition text). A family that several sources
    have is written once (its first ``# HELP`` and ``# TYPE``), followed by every
    source's samples: a scraper rejects a family declared twice. ``only(label, family)``
    keeps some families of a source and drops the others.
    """
    families: dict[str, _Family] = {}
    for label, text in sources:
        current: str | None = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                found = _comment(line)
                if found is None:
                    continue  # another comment: nothing a scraper needs
                kind, current = found
                family = families.setdefault(current, _Family())
                if kind == "HELP" and family.help_line is None:
                    family.help_line = line
                elif kind == "TYPE" and family.type_line is None:
                    family.type_line = line
                continue
            name = current if current is not None else _sample_name(line)
            if only is not None and not only(label, name):
                continue
            families.setdefault(name, _Family()).samples.append(
                with_label(line, WORKER_LABEL, label)
            )
    lines: list[str] = []
    for family in families.values():
        if not family.samples:
            continue  # declared by a source whose series were all left out
        lines.extend(line for line in (family.help_line, family.type_line) if line is not None)
        lines.extend(family.samples)
    return "\n".join(lines) + "\n" if lines else ""


def pool_metrics(workers: Sequence[Worker], answered: Collection[str]) -> str:
    """The parent's own families about its workers: read in this scrape or not, restarts."""
    up = [
        f'drainer_worker_up{{worker="{w.id}"}} {1.0 if w.id in answered else 0.0}' for w in workers
    ]
    restarts = [
        f'drainer_worker_restarts_total{{worker="{w.id}"}} {float(w.restarts)}' for w in workers
    ]
    lines = [
        "# HELP drainer_worker_up 1 when the worker's metrics were read in this scrape, else 0.",
        "# TYPE drainer_worker_up gauge",
        *up,
        "# HELP drainer_worker_restarts_total Restarts of the worker after it died.",
        "# TYPE drainer_worker_restarts_total counter",
        *restarts,
    ]
    return "\n".join(lines) + "\n"


# ---- the front


async def _ask(worker: Worker, path: str) -> tuple[WorkerReply | None, str | None]:
    """The worker's answer to ``path``, or None and why not."""
    if worker.port is None:
        return None, "serves no API"
    try:
        return await fetch(worker.port, path), None
    except TimeoutError:
        return None, f"no answer within {WORKER_REQUEST_TIMEOUT_S:.0f}s"
    except (OSError, WorkerReplyError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _identity(worker: Worker) -> dict[str, Any]:
    return {
        "worker": worker.id,
        "consumer": worker.consumer,
        "pid": worker.pid,
        "state": worker.state,
        "restarts": worker.restarts,
    }


class WorkersFrontend:
    """The parent's ASGI app: probes and metrics from the workers, the rest from ``app``."""

    def __init__(
        self,
        pool: WorkerPool,
        app: ASGIApp,
        *,
        metrics_enabled: bool,
        own_metrics: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        """``own_metrics`` renders the parent's registry (its :data:`PARENT_FAMILIES`)."""
        self.pool = pool
        self.app = app
        self.metrics_enabled = metrics_enabled
        self.own_metrics = own_metrics
        self._routes: dict[str, Callable[[], Awaitable[Response]]] = {
            LIVENESS_PATH: self.liveness,
            READINESS_PATH: self.readiness,
            METRICS_PATH: self.metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self._routes.get(scope.get("path", ""))
            if scope["type"] == "http" and scope.get("method") == "GET"
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        response = await route()
        await response(scope, receive, send)

    async def _worker_liveness(self, worker: Worker) -> dict[str, Any]:
        body = _identity(worker)
        reply: WorkerReply | None = None
        if worker.running:
            reply, why = await _ask(worker, LIVENESS_PATH)
            live = reply is not None and reply.status == 200
            detail = why if reply is None else (None if live else f"its /health is {reply.status}")
        else:
            live, detail = worker.liveness()
        body.update(live=live, detail=detail, health=reply.json() if reply is not None else None)
        return body

    async def liveness(self) -> Response:
        """200 while every worker is alive (or restarting, short of a crash loop)."""
        workers = await asyncio.gather(*(self._worker_liveness(w) for w in self.pool.workers))
        live = all(w["live"] for w in workers)
        body = {
            "status": "ok" if live else "failing",
            "workers_total": len(workers),
            "uptime_s": round(time.time() - self.pool.started_at, 3),
            "stopping": self.pool.stopping,
            "workers": list(workers),
        }
        return SafeJSONResponse(body, status_code=200 if live else UNAVAILABLE)

    async def _worker_readiness(self, worker: Worker) -> dict[str, Any]:
        body = _identity(worker)
        reply: WorkerReply | None = None
        if worker.running:
            reply, why = await _ask(worker, READINESS_PATH)
            ready = reply is not None and reply.status == 200
            detail = why if reply is None else (None if ready else "not ready")
        else:
            ready, detail = False, worker.state
        body.update(ready=ready, detail=detail, readiness=reply.json() if reply else None)
        return body

    async def readiness(self) -> Response:
        """200 when every worker is ready (its own ``/health/ready`` is 200)."""
        workers = await asyncio.gather(*(self._worker_readiness(w) for w in self.pool.workers))
        ready = all(w["ready"] for w in workers) and not self.pool.stopping
        body = {"ready": ready, "stopping": self.pool.stopping, "workers": list(workers)}
        return SafeJSONResponse(body, status_code=200 if ready else UNAVAILABLE)

    async def _worker_metrics(self, worker: Worker) -> tuple[str, str] | None:
        if not worker.running:
            return None
        reply, _ = await _ask(worker, METRICS_PATH)
        if reply is None or reply.status != 200:
            return None  # drainer_worker_up says which worker is missing
        return worker.id, reply.body.decode("utf-8", errors="replace")

    async def metrics(self) -> Response:
        """The workers' metrics merged, labelled ``worker``, and the parent's own."""
        if not self.metrics_enabled:
            detail = "metrics are disabled (telemetry.metrics_enabled = false)"
            return SafeJSONResponse({"detail": detail}, status_code=404)
        found = await asyncio.gather(*(self._worker_metrics(w) for w in self.pool.workers))
        sources = [source for source in found if source is not None]
        answered = {label for label, _ in sources}
        if self.own_metrics is not None:
            sources.append((PARENT_LABEL, (await self.own_metrics()).decode()))
        text = merge_metrics(sources, only=_keep) + pool_metrics(self.pool.workers, answered)
        return Response(text, media_type=PROMETHEUS_CONTENT_TYPE)


def _keep(label: str, family: str) -> bool:
    return label != PARENT_LABEL or family in PARENT_FAMILIES
