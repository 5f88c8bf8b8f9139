"""Metrics: OpenTelemetry instruments, exported as Prometheus text on ``/metrics`` and to OTLP.

Each :class:`DrainerMetrics` has its own ``MeterProvider`` and its own
``prometheus_client`` registry (never the global ones), so several drainers in
one process (the tests) do not collide. The names below are the Prometheus
names; counters get ``_total`` appended by the exporter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeterProvider, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from drainer.consumers.aio import wait_or_stop
from drainer.consumers.group import RedisClient
from drainer.consumers.inspect import TenantPending, tenant_pending
from drainer.consumers.streams import StreamLayout

log = logging.getLogger("drainer.metrics")

METER_NAME = "drainer"
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST
OTLP_METRICS_PATH = "/v1/metrics"
OTLP_EXPORT_INTERVAL_MS = 15_000
#: Longest one OTLP export may take, retries included (the exporter's default is 10 s;
#: the SDK's last export at shutdown otherwise waits out the export interval).
OTLP_EXPORT_TIMEOUT_S = 5.0
#: How often the backlog gauges are refreshed from Redis between scrapes.
PENDING_REFRESH_S = 5.0
#: A scrape re-reads the backlog unless it was read this recently (coalesces scrapers).
PENDING_MAX_AGE_S = 0.1

#: Bucket bounds (seconds) of one statement; most take well under 10 ms.
QUERY_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
#: Bucket bounds (seconds) of a batch transaction.
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Bucket bounds (seconds) of push-to-apply delay: sub-second normally, hours after an outage.
DELAY_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
#: Bucket bounds (seconds) of shutdown clean-up.
CLEANUP_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60)

#: (tenant, component, ok) for the ``drainer_health`` gauge.
HealthSource = Callable[[], Iterable[tuple[str, str, bool]]]


class Tally:
    """A monotonic counter summed in the process, read by an observable counter.

    The consumer loop counts several things per batch; an SDK counter's ``add``
    validates and hashes its attributes every call (about 20 µs on the benchmark
    machine, docs/performance.md), this one is a dict update. The totals are exported
    when a reader collects, as the same cumulative sum a counter exports.
    """

    __slots__ = ("_totals",)

    def __init__(self) -> None:
        self._totals: dict[tuple[tuple[str, str], ...], int] = {}

    def add(self, amount: int, attributes: Mapping[str, str] | None = None) -> None:
        """Count ``amount`` under ``attributes``."""
        key = tuple(attributes.items()) if attributes else ()
        totals = self._totals
        totals[key] = totals.get(key, 0) + amount

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        """The totals so far, one per attribute set (the collector's callback)."""
        # a copy is one C call: an OTLP export thread never sees the dict change size
        merged: dict[frozenset[tuple[str, str]], int] = {}
        for key, total in self._totals.copy().items():
            same = frozenset(key)  # the same attributes given in another order
            merged[same] = merged.get(same, 0) + total
        for attributes, total in merged.items():
            yield Observation(total, dict(attributes))

    @classmethod
    def on(cls, meter: Meter, name: str, unit: str = "", description: str = "") -> Tally:
        """A tally exported by ``meter`` as the counter ``name``."""
        tally = cls()
        meter.create_observable_counter(name, [tally.observe], unit, description)
        return tally


@dataclass(slots=True)
class PendingCache:
    """The last backlog read from Redis (None until the first read succeeds)."""

    tenants: list[TenantPending] | None = None
    refreshed_at: float = 0.0  # monotonic seconds


class PendingMonitor:
    """Keeps the backlog gauges' numbers: XLEN and XPENDING of every partition."""

    def __init__(
        self,
        redis: RedisClient,
        tenants: Mapping[str, StreamLayout],
        group: str,
        *,
        interval_s: float = PENDING_REFRESH_S,
    ) -> None:
        self.redis = redis
        self.tenants = dict(tenants)
        self.group = group
        self.interval_s = interval_s
        self.cache = PendingCache()

    async def refresh(self) -> list[TenantPending]:
        """Read every tenant's backlog now and keep it for the gauges."""
        snapshot = [
            await tenant_pending(self.redis, tenant, layout, self.group, detail=False)
            for tenant, layout in self.tenants.items()
        ]
        self.cache = PendingCache(snapshot, time.monotonic())
        return snapshot

    async def refresh_if_older(self, max_age_s: float = PENDING_MAX_AGE_S) -> None:
        """Refresh unless the cache is fresh; a Redis failure keeps the old numbers."""
        if time.monotonic() - self.cache.refreshed_at < max_age_s:
            return
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:
            log.warning("could not read the backlog for /metrics: %s", exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``interval_s`` until ``stop`` (held and awaited by the drainer)."""
        while not stop.is_set():
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("could not read the backlog: %s", exc)
            except Exception:
                # a bug here must not stop the drain: say so loudly and keep going
                log.exception("reading the backlog failed")
            await wait_or_stop(stop, self.interval_s)


class DrainerMetrics:
    """The drainer's instruments on their own provider and Prometheus registry."""

    def __init__(
        self,
        *,
        enabled: bool,
        resource: Resource,
        otlp_endpoint: str | None = None,
    ) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry(auto_describe=True)
        self.provider: MeterProvider | None = None
        self.pending: PendingMonitor | None = None
        self.health: HealthSource | None = None
        meter: Meter
        if enabled:
            readers: list[MetricReader] = [
                PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
            ]
            readers.extend(otlp_readers(otlp_endpoint))
            self.provider = MeterProvider(
                metric_readers=readers,
                resource=resource,
                shutdown_on_exit=False,
                # exemplars are not exported to Prometheus text: do not pay to sample them
                exemplar_filter=AlwaysOffExemplarFilter(),
            )
            meter = self.provider.get_meter(METER_NAME)
        else:
            meter = NoOpMeterProvider().get_meter(METER_NAME)
        self._make_instruments(meter)

    def _make_instruments(self, meter: Meter) -> None:
        entry = "{entry}"
        self.jobs_picked = Tally.on(
            meter,
            "drainer_jobs_picked",
            entry,
            "Entries read from a partition stream (per stream).",
        )
        self.claims = Tally.on(
            meter, "drainer_claimed_entries", entry, "Entries taken over from an idle consumer."
        )
        self.successful_queries = Tally.on(
            meter,
            "drainer_successful_queries",
            entry,
            "Entries whose operation was committed, by operation and table.",
        )
        self.entries = Tally.on(
            meter,
            "drainer_entries_handled",
            entry,
            "Entries handled by outcome: applied, existed, skipped (fence), dead.",
        )
        self.errors = Tally.on(
            meter, "drainer_errors", "{error}", "Errors by class: read, parse, query, ack."
        )
        self.dead_letters = Tally.on(
            meter, "drainer_dead_letters", entry, "Entries dead-lettered, by error class."
        )
        self.batches = Tally.on(
            meter, "drainer_batches", "{batch}", "Batch transactions, by result (ok, failed)."
        )
        self.replays = meter.create_counter(
            "drainer_replays", "{request}", "Operator replays of pending entries, by outcome."
        )
        self.requeued = meter.create_counter(
            "drainer_requeued_dead_letters", entry, "Dead letters requeued by an operator."
        )
        self.shutdown_signals = meter.create_counter(
            "drainer_shutdown_signal_received", "{signal}", "Shutdown requests, by reason."
        )
        self.successful_shutdowns = meter.create_counter(
            "drainer_successful_shutdown",
            "{shutdown}",
            "Shutdowns that finished every batch in flight in time.",
        )
        self.query_seconds = meter.create_histogram(
            "drainer_query_execution_seconds",
            "s",
            "Time of one SQL statement, by operation and table.",
            explicit_bucket_boundaries_advisory=QUERY_SECONDS_BUCKETS,
        )
        self.batch_seconds = meter.create_histogram(
            "drainer_batch_duration_seconds",
            "s",
            "Time from reading a batch to acknowledging it.",
            explicit_bucket_boundaries_advisory=BATCH_SECONDS_BUCKETS,
        )
        self.delay_seconds = meter.create_histogram(
            "drainer_delay_seconds",
            "s",
            "Drainer delay: commit time minus the entry's pushed_at.",
            explicit_bucket_boundaries_advisory=DELAY_SECONDS_BUCKETS,
        )
        self.cleanup_seconds = meter.create_histogram(
            "drainer_cleanup_seconds",
            "s",
            "Shutdown: time to finish the batches in flight.",
            explicit_bucket_boundaries_advisory=CLEANUP_SECONDS_BUCKETS,
        )
        meter.create_observable_gauge(
            "drainer_pending_entries",
            [self._observe_total],
            entry,
            "Backlog: entries not yet applied, over all partitions and tenants (autoscaling).",
        )
        meter.create_observable_gauge(
            "drainer_partition_pending_entries",
            [self._observe_partitions],
            entry,
            "Backlog of one partition stream (its length: applied entries are deleted).",
        )
        meter.create_observable_gauge(
            "drainer_group_pending_entries",
            [self._observe_group_pending],
            entry,
            "Entries delivered to a consumer and not yet acknowledged, per partition.",
        )
        meter.create_observable_gauge(
            "drainer_dead_letter_entries",
            [self._observe_dead_letters],
            entry,
            "Entries in the tenant's dead-letter stream.",
        )
        meter.create_observable_gauge(
            "drainer_health",
            [self._observe_health],
            "1",
            "1 when the component (redis, database, loop) of the tenant is healthy, else 0.",
        )

    # ---- observable gauges: read cached values, never I/O (they run inside a scrape)

    def _snapshot(self) -> Sequence[TenantPending]:
        if self.pending is None or self.pending.cache.tenants is None:
            return ()
        return self.pending.cache.tenants

    def _observe_total(self, _options: CallbackOptions) -> Iterable[Observation]:
        snapshot = self._snapshot()
        if snapshot:
            yield Observation(sum(t.backlog for t in snapshot))

    def _observe_partitions(self, _options: CallbackOptions) -> Iterable[Observation]:
        for tenant in self._snapshot():
            for p in tenant.partitions:
                yield Observation(p.backlog, {"tenant": tenant.tenant, "stream": p.stream})

    def _observe_group_pending(self, _options: CallbackOptions) -> Iterable[Observation]:
        for tenant in self._snapshot():
            for p in tenant.partitions:
                yield Observation(p.pending, {"tenant": tenant.tenant, "stream": p.stream})

    def _observe_dead_letters(self, _options: CallbackOptions) -> Iterable[Observation]:
        for tenant in self._snapshot():
            yield Observation(tenant.dead_letters, {"tenant": tenant.tenant})

    def _observe_health(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self.health is None:
            return
        for tenant, component, ok in self.health():
            yield Observation(1 if ok else 0, {"tenant": tenant, "component": component})

    # ---- export

    async def render(self) -> bytes:
        """The Prometheus text exposition, with the backlog re-read if it is stale."""
        if self.pending is not None:
            await self.pending.refresh_if_older()
        return generate_latest(self.registry)

    def shutdown(self, timeout_ms: float) -> None:
        """Flush OTLP and release the readers, waiting at most ``timeout_ms`` (idempotent)."""
        if self.provider is not None:
            provider, self.provider = self.provider, None
            provider.shutdown(timeout_millis=timeout_ms)


def otlp_readers(endpoint: str | None) -> list[MetricReader]:
    """A periodic OTLP/HTTP reader to ``endpoint`` (none if unset or not installed)."""
    if not endpoint:
        return []
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    except ImportError:
        log.warning(
            "telemetry.otlp_endpoint is set but the OTLP exporter is not installed "
            "(pip install 'drainer[otlp]'): metrics are served on /metrics only"
        )
        return []
    exporter = OTLPMetricExporter(
        endpoint=endpoint.rstrip("/") + OTLP_METRICS_PATH, timeout=OTLP_EXPORT_TIMEOUT_S
    )
    return [
        PeriodicExportingMetricReader(
            exporter,
            export_interval_millis=OTLP_EXPORT_INTERVAL_MS,
            export_timeout_millis=OTLP_EXPORT_TIMEOUT_S * 1000,
        )
    ]
