"""Telemetry: logs (text or JSON), metrics and traces of one drainer.

:class:`Telemetry` owns a drainer's meter and tracer providers and hands each
tenant an observer that the consumer loop reports to. Nothing here is global:
several drainers in one process keep separate numbers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor

from drainer.consumers.entry import StreamSource
from drainer.consumers.group import ReadMode, ReadResult
from drainer.consumers.observe import NO_OBSERVER, PARSE_ERROR_CLASSES, DrainObserver, ErrorClass
from drainer.db.errors import DrainerDbError
from drainer.db.executor import BatchEntry, BatchResult, Outcome
from drainer.db.models import ModelRegistry
from drainer.db.operations import OpKind
from drainer.escaping import escape_text, printable
from drainer.hyperswitch_metrics import MS_PER_S, PARSE_FAIL_OPERATION, HyperswitchMetrics
from drainer.metrics import DrainerMetrics, HealthSource, PendingMonitor, otlp_readers
from drainer.tracing import BatchTracer, make_span_recorder

if TYPE_CHECKING:
    from drainer.settings import Settings
    from drainer.store import Store

log = logging.getLogger("drainer.telemetry")

#: Attributes every LogRecord has; anything else was passed in ``extra=``.
#: ``color_message`` is uvicorn's duplicate of the message, with terminal colours.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}

#: The consumer loop counts as alive while some worker went round this recently,
#: beyond the longest a healthy worker waits between rounds.
LIVENESS_GRACE_S = 30.0
NS_PER_S = 1_000_000_000
#: Entries per batch whose delay is observed, evenly spaced, first and last included.
#: One observation costs about 20 µs on the benchmark machine (the SDK checks and
#: hashes its attributes each time): sampling keeps the quantiles over many batches
#: and makes the cost per batch instead of per entry.
DELAY_SAMPLES_PER_BATCH = 4
#: Longest the exporters may take to flush when the drainer stops (collector unreachable).
FLUSH_TIMEOUT_S = 3.0


def _extras(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            yield key, value


def _message(record: logging.LogRecord) -> str:
    """The record's message; a format that does not fit its arguments is shown, not raised."""
    try:
        return record.getMessage()
    except Exception as exc:  # logging would print "--- Logging error ---" and drop the line
        return f"{record.msg!r} with arguments {record.args!r} (cannot format: {exc})"


def _shown(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra=`` fields (global_id, request_id, ...).

    A line is never dropped: text that is not UTF-8 (bytes read from Redis, see
    :mod:`app.escaping`) is written as ``\\xNN``, anything else orjson refuses
    (a non-string key, an integer beyond 64 bits) goes through the stdlib encoder.
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(doc, default=_shown).decode()
        except TypeError:  # orjson.JSONEncodeError: the rare line, off the fast path
            return json.dumps(printable(doc), ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Readable lines; ``extra=`` fields are appended as ``key=value``.

    Text that is not UTF-8 is written as ``\\xNN`` (see :mod:`app.escaping`).
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        try:
            line = super().format(record)
        except Exception:  # the message does not fit its arguments: show both instead
            line = super().format(
                logging.makeLogRecord({**vars(record), "msg": _message(record), "args": None})
            )
        extras = " ".join(f"{k}={_shown(v)}" for k, v in _extras(record) if v is not None)
        if extras:
            head, sep, tail = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} [{extras}]{sep}{tail}"
        return escape_text(line)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send the drainer's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.error").setLevel(max(root.level, logging.INFO))


def liveness_window_s(settings: Settings) -> float:
    """How long the consumer loop may go without a worker round before it counts as stuck.

    A healthy worker waits at most ``idle_poll_max_ms`` (idle) or
    ``retry_backoff_max_ms`` (failing) between rounds, and a batch takes about
    ``slow_batch_ms``; twice the longest wait plus that, plus a grace period.
    """
    d = settings.drainer
    longest_wait_ms = max(d.idle_poll_max_ms, d.retry_backoff_max_ms)
    return (2 * longest_wait_ms + d.slow_batch_ms) / 1000 + LIVENESS_GRACE_S


def _evenly_spaced(values: Sequence[float], most: int) -> Sequence[float]:
    """At most ``most`` of ``values``, evenly spaced, the first and the last included."""
    n = len(values)
    if n <= most:
        return values
    step = (n - 1) / (most - 1)
    return [values[round(i * step)] for i in range(most)]


class TenantObserver(DrainObserver):
    """Turns one tenant's consumer-loop events into metrics and spans."""

    def __init__(
        self,
        tenant: str,
        registry: ModelRegistry,
        metrics: DrainerMetrics,
        tracer: BatchTracer | None,
        hyperswitch: HyperswitchMetrics | None = None,
    ) -> None:
        self.tenant = tenant
        self.registry = registry
        self.metrics = metrics
        self.tracer = tracer
        self.hyperswitch = hyperswitch
        self.times_redis = hyperswitch is not None
        self._labels = {"tenant": tenant}
        self._stream_labels: dict[str, dict[str, str]] = {}
        # attribute dicts reused per (operation, table): built once, not per entry
        self._op_labels: dict[tuple[OpKind, str], dict[str, str]] = {}
        self._hs_labels: dict[tuple[OpKind, str], dict[str, str]] = {}
        self._picked_labels: dict[str, dict[str, str]] = {}
        self._outcome_labels = {
            outcome.value: {"tenant": tenant, "outcome": outcome.value} for outcome in Outcome
        }
        self._batch_ok = {"tenant": tenant, "result": "ok"}

    def _hs_op(self, kind: OpKind, table: str) -> dict[str, str]:
        """Hyperswitch's attributes of a query: operation and table, no tenant."""
        labels = self._hs_labels.get((kind, table))
        if labels is None:
            labels = {"operation": kind.value, "table": table}
            self._hs_labels[kind, table] = labels
        return labels

    def _op(self, kind: OpKind, table: str) -> dict[str, str]:
        labels = self._op_labels.get((kind, table))
        if labels is None:
            labels = {"tenant": self.tenant, "operation": kind.value, "table": table}
            self._op_labels[kind, table] = labels
        return labels

    def _hs_stream(self, stream: str) -> dict[str, str]:
        labels = self._stream_labels.get(stream)
        if labels is None:
            labels = self._stream_labels[stream] = {"stream": stream}
        return labels

    def stream_empty(self, stream: str) -> None:
        if self.hyperswitch is not None:
            self.hyperswitch.stream_empty.add(1)

    def stream_read_time(self, stream: str, duration_s: float) -> None:
        if self.hyperswitch is not None:
            self.hyperswitch.redis_stream_read_time.record(
                duration_s * MS_PER_S, self._hs_stream(stream)
            )

    def stream_ack_time(self, stream: str, duration_s: float) -> None:
        if self.hyperswitch is not None:
            self.hyperswitch.redis_stream_trim_time.record(
                duration_s * MS_PER_S, self._hs_stream(stream)
            )

    def entries_read(self, stream: str, read: ReadResult) -> None:
        count = len(read.entries)
        labels = self._picked_labels.get(stream)
        if labels is None:
            labels = self._picked_labels[stream] = {"tenant": self.tenant, "stream": stream}
        self.metrics.jobs_picked.add(count, labels)
        if read.mode is ReadMode.CLAIMED:
            self.metrics.claims.add(count, self._labels)
        if self.hyperswitch is not None:
            self.hyperswitch.jobs_picked_per_stream.add(count, self._hs_stream(stream))

    def batch_done(
        self,
        stream: str,
        read: ReadResult,
        batch: Sequence[BatchEntry[StreamSource]],
        result: BatchResult[StreamSource],
        started_ns: int,
    ) -> None:
        ended_ns = time.time_ns()
        m = self.metrics
        now_s = ended_ns / NS_PER_S
        committed: Counter[tuple[OpKind, str]] = Counter()
        outcomes: Counter[str] = Counter()
        pushed: list[float] = []
        hs = self.hyperswitch
        for handled in result.handled:
            outcomes[handled.outcome.value] += 1
            entry = handled.entry
            if handled.outcome is Outcome.APPLIED or handled.outcome is Outcome.EXISTED:
                op = entry.operation
                if op is not None:
                    committed[op.kind, op.tag] += 1  # tags resolved once per batch, below
                envelope = entry.source.envelope
                if envelope is not None:
                    pushed.append(envelope.pushed_at)
                    if hs is not None and op is not None:
                        # Hyperswitch: whole seconds, one point per entry
                        delay = max(0, int(now_s) - int(envelope.pushed_at))
                        hs.drainer_delay_seconds.record(
                            delay, self._hs_op(op.kind, self._table(op.tag, op.kind))
                        )
            elif handled.outcome is Outcome.DEAD:
                self._dead(handled.error, entry)
        for pushed_at in _evenly_spaced(pushed, DELAY_SAMPLES_PER_BATCH):
            m.delay_seconds.record(max(0.0, now_s - pushed_at), self._labels)
        by_table: Counter[tuple[OpKind, str]] = Counter()
        for (kind, tag), count in committed.items():
            by_table[kind, self._table(tag, kind)] += count
        for (kind, table), count in by_table.items():
            m.successful_queries.add(count, self._op(kind, table))
            if hs is not None:
                hs.successful_query_execution.add(count, self._hs_op(kind, table))
        for outcome, count in outcomes.items():
            m.entries.add(count, self._outcome_labels[outcome])
        if result.retry is not None:
            m.errors.add(1, {"tenant": self.tenant, "class": ErrorClass.QUERY.value})
            if hs is not None:
                self._hs_query_error(result.retry)
        m.batches.add(1, self._batch_ok)
        m.batch_seconds.record((ended_ns - started_ns) / NS_PER_S, self._labels)
        if self.tracer is not None:
            self.tracer.batch(stream, read.mode.value, batch, result, None, started_ns, ended_ns)

    def _table(self, tag: str, kind: OpKind) -> str:
        try:
            return self.registry.resolve(tag, kind).name
        except DrainerDbError:
            return tag

    def _dead(self, error: DrainerDbError | None, entry: BatchEntry[StreamSource]) -> None:
        error_class = error.error_class if error is not None else "unknown"
        self.metrics.dead_letters.add(1, {"tenant": self.tenant, "error_class": error_class})
        where = ErrorClass.PARSE if error_class in PARSE_ERROR_CLASSES else ErrorClass.QUERY
        self.metrics.errors.add(1, {"tenant": self.tenant, "class": where.value})
        hs = self.hyperswitch
        if hs is not None:
            if where is ErrorClass.PARSE:
                hs.stream_parse_fail.add(1, {"operation": PARSE_FAIL_OPERATION})
            else:
                self._hs_query_error(entry)

    def _hs_query_error(self, entry: BatchEntry[StreamSource]) -> None:
        op = entry.operation
        if self.hyperswitch is not None and op is not None:
            labels = self._hs_op(op.kind, self._table(op.tag, op.kind))
            self.hyperswitch.errors_while_query_execution.add(1, labels)

    def batch_failed(
        self,
        stream: str,
        batch: Sequence[BatchEntry[StreamSource]],
        error: BaseException,
        started_ns: int,
    ) -> None:
        ended_ns = time.time_ns()
        self.metrics.batches.add(1, {"tenant": self.tenant, "result": "failed"})
        if self.tracer is not None:
            self.tracer.batch(stream, "failed", batch, None, error, started_ns, ended_ns)

    def error(self, stream: str, error_class: ErrorClass) -> None:
        self.metrics.errors.add(1, {"tenant": self.tenant, "class": error_class.value})

    def statement(self, kind: OpKind, table: str, duration_s: float, rows: int) -> None:
        self.metrics.query_seconds.record(duration_s, self._op(kind, table))
        if self.hyperswitch is not None:
            self.hyperswitch.query_execution_time.record(
                duration_s * MS_PER_S, self._hs_op(kind, table)
            )


class Telemetry:
    """A drainer's metrics and traces, attached to its tenants' consumer loops."""

    def __init__(
        self,
        settings: Settings,
        *,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        """``metric_readers`` also read Hyperswitch's metrics, when they are on (tests)."""
        tel = settings.telemetry
        self.settings = settings
        resource = Resource.create(
            {
                "service.name": tel.service_name,
                "service.instance.id": settings.drainer.consumer_name,
            }
        )
        self.metrics = DrainerMetrics(
            enabled=tel.metrics_enabled, resource=resource, otlp_endpoint=tel.otlp_endpoint
        )
        self.spans = (
            make_span_recorder(tel.service_name, tel.otlp_endpoint, span_processors, resource)
            if tel.traces_enabled
            else None
        )
        # Hyperswitch's names over OTLP: built only when asked for (else no work at all)
        self.hyperswitch = (
            HyperswitchMetrics(
                resource=resource,
                readers=[*otlp_readers(tel.otlp_endpoint), *metric_readers],
            )
            if tel.hyperswitch_metrics
            else None
        )
        self.pending: PendingMonitor | None = None

    def observer(self, tenant_id: str, registry: ModelRegistry) -> DrainObserver:
        """The observer a tenant's workers report to (give it to ``Store.create``)."""
        if not self.metrics.enabled and self.spans is None and self.hyperswitch is None:
            return NO_OBSERVER  # nothing to record: keep the hot path bare
        tracer = BatchTracer(self.spans, tenant_id) if self.spans is not None else None
        return TenantObserver(tenant_id, registry, self.metrics, tracer, self.hyperswitch)

    def watch(self, stores: Mapping[str, Store]) -> None:
        """Read the backlog and health gauges from these open stores (once, before ``run``)."""
        first = next(iter(stores.values()))
        self.pending = PendingMonitor(
            first.redis,
            {tenant_id: store.layout for tenant_id, store in stores.items()},
            self.settings.drainer.consumer_group,
        )
        self.metrics.pending = self.pending
        self.metrics.health = self._health_of(stores, liveness_window_s(self.settings))

    @staticmethod
    def _health_of(stores: Mapping[str, Store], window_s: float) -> HealthSource:
        def health() -> Iterator[tuple[str, str, bool]]:
            # what the workers last saw (a scrape must not wait on Redis or the database)
            for tenant_id, store in stores.items():
                seen = store.pipeline.health
                yield tenant_id, "redis", seen.redis_ok
                yield tenant_id, "database", seen.db_ok
                yield tenant_id, "loop", seen.loop_age_s() < window_s

        return health

    @property
    def tracing_enabled(self) -> bool:
        """True when spans are made (traces enabled and something receives them)."""
        return self.spans is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the backlog gauges fresh until ``stop`` (the drainer holds this task)."""
        if self.metrics.enabled and self.pending is not None:
            await self.pending.run(stop)
        else:
            await stop.wait()

    def shutdown_requested(self) -> None:
        """Hyperswitch's ``SHUTDOWN_SIGNAL_RECEIVED`` (the caller counts the drainer's own)."""
        if self.hyperswitch is not None:
            self.hyperswitch.shutdown_signal_received.add(1)

    def shutdown_finished(self, elapsed_s: float, *, clean: bool) -> None:
        """Hyperswitch's ``SUCCESSFUL_SHUTDOWN`` (when ``clean``) and ``CLEANUP_TIME``."""
        if self.hyperswitch is not None:
            if clean:
                self.hyperswitch.successful_shutdown.add(1)
            self.hyperswitch.cleanup_time.record(elapsed_s * MS_PER_S)

    def shutdown_within(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """:meth:`shutdown` in a thread of its own, waited for at most ``timeout_s``;
        False (and a warning) when it did not finish.

        The SDK does not keep to its own timeouts: a span flush waits for the export in
        flight, each export retries until its timeout, and the last metrics export waits
        out the export interval. With the collector unreachable a stopping drainer took
        35 s to exit. The thread is a daemon: what it has not sent by then is lost with
        the process, which has finished its batches already.
        """
        thread = threading.Thread(target=self.shutdown, name="telemetry-flush", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning(
                "telemetry did not flush within %.0fs (is the OTLP collector reachable?); "
                "exiting without it",
                timeout_s,
            )
            return False
        return True

    def shutdown(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Flush and stop the exporters, asking each to take at most what is left of
        ``timeout_s`` (idempotent; :meth:`shutdown_within` bounds it for sure)."""
        deadline = time.monotonic() + timeout_s

        def left_ms() -> float:
            return max(0.0, deadline - time.monotonic()) * 1000

        self.metrics.shutdown(left_ms())
        if self.hyperswitch is not None:
            self.hyperswitch.shutdown(left_ms())
        if self.spans is not None:
            spans, self.spans = self.spans, None
            spans.shutdown(left_ms())
