"""Hyperswitch's drainer metrics, under Hyperswitch's names, exported over OTLP.

Dashboards built for Hyperswitch's Rust drainer read its OpenTelemetry meter
``DRAINER``: instruments named in upper case (``SUCCESSFUL_QUERY_EXECUTION``, ...),
without units, with the attributes ``operation``, ``table`` and ``stream``.
With ``[telemetry] hyperswitch_metrics = true`` the drainer exports those too, on a
provider of their own beside its Prometheus names (see docs/operations.md).

Hyperswitch records per entry; the drainer records per batch with the same totals
(a counter gets ``add(n)``). Histograms of one value per entry (the delay) are
recorded per entry; ``QUERY_EXECUTION_TIME`` gets one point per SQL statement,
which may carry several entries (a multi-row insert).

Hyperswitch removes a processed batch in two Redis calls, an ``XTRIM MINID`` up to
the last entry (``REDIS_STREAM_TRIM_TIME``) and an ``XDEL`` of that entry
(``REDIS_STREAM_DEL_TIME``). The drainer removes it in one script (``XACK`` and
``XDEL`` of exactly the entries handled): its time is ``REDIS_STREAM_TRIM_TIME``,
the call that removes the batch, and ``REDIS_STREAM_DEL_TIME`` is not exported
(recording the same call twice would double the time a dashboard adds up).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from drainer.metrics import Tally

#: The meter Hyperswitch's Rust drainer declares (``global_meter!(DRAINER_METER, "DRAINER")``).
HYPERSWITCH_METER_NAME = "DRAINER"
#: Hyperswitch's histogram buckets: 0.02 doubling fifteen times (to 327.68).
HYPERSWITCH_BUCKETS = tuple(0.01 * 2**i for i in range(1, 16))
#: The ``operation`` attribute of ``STREAM_PARSE_FAIL``.
PARSE_FAIL_OPERATION = "deserialization"
#: The instruments exported, under Hyperswitch's (upper-case) names.
HYPERSWITCH_INSTRUMENTS = (
    "JOBS_PICKED_PER_STREAM",
    "SUCCESSFUL_QUERY_EXECUTION",
    "ERRORS_WHILE_QUERY_EXECUTION",
    "STREAM_PARSE_FAIL",
    "QUERY_EXECUTION_TIME",
    "DRAINER_DELAY_SECONDS",
    "STREAM_EMPTY",
    "REDIS_STREAM_READ_TIME",
    "REDIS_STREAM_TRIM_TIME",
    "SHUTDOWN_SIGNAL_RECEIVED",
    "SUCCESSFUL_SHUTDOWN",
    "CLEANUP_TIME",
)
MS_PER_S = 1000.0


class HyperswitchMetrics:
    """The ``DRAINER`` meter's instruments on their own provider.

    No unit is set, as in Hyperswitch: a collector's Prometheus exporter would
    otherwise append one to the names dashboards query. The Python SDK lowercases
    instrument names (the Rust SDK keeps them); a view per instrument restores the
    upper-case name on export.
    """

    def __init__(self, *, resource: Resource, readers: Sequence[MetricReader]) -> None:
        self.provider: MeterProvider | None = MeterProvider(
            metric_readers=list(readers),
            resource=resource,
            shutdown_on_exit=False,
            exemplar_filter=AlwaysOffExemplarFilter(),
            views=[
                View(meter_name=HYPERSWITCH_METER_NAME, instrument_name=name.lower(), name=name)
                for name in HYPERSWITCH_INSTRUMENTS
            ],
        )
        self._make_instruments(self.provider.get_meter(HYPERSWITCH_METER_NAME))

    def _make_instruments(self, meter: Meter) -> None:
        self.jobs_picked_per_stream = Tally.on(
            meter, "JOBS_PICKED_PER_STREAM", description="Entries read from a stream (stream)."
        )
        self.successful_query_execution = Tally.on(
            meter,
            "SUCCESSFUL_QUERY_EXECUTION",
            description="Entries whose query was committed (operation, table).",
        )
        self.errors_while_query_execution = Tally.on(
            meter,
            "ERRORS_WHILE_QUERY_EXECUTION",
            description="Entries whose query failed (operation, table).",
        )
        self.stream_parse_fail = Tally.on(
            meter, "STREAM_PARSE_FAIL", description="Entries that could not be parsed (operation)."
        )
        self.query_execution_time = meter.create_histogram(
            "QUERY_EXECUTION_TIME",
            description="Time of one SQL statement in milliseconds (operation, table).",
            explicit_bucket_boundaries_advisory=HYPERSWITCH_BUCKETS,
        )
        self.drainer_delay_seconds = meter.create_histogram(
            "DRAINER_DELAY_SECONDS",
            description="Whole seconds from pushed_at to commit, per entry (operation, table).",
            explicit_bucket_boundaries_advisory=HYPERSWITCH_BUCKETS,
        )

        self.stream_empty = Tally.on(
            meter, "STREAM_EMPTY", description="Reads of a partition stream that returned nothing."
        )
        self.redis_stream_read_time = meter.create_histogram(
            "REDIS_STREAM_READ_TIME",
            description="Time of one read of a partition stream in milliseconds (stream).",
            explicit_bucket_boundaries_advisory=HYPERSWITCH_BUCKETS,
        )
        self.redis_stream_trim_time = meter.create_histogram(
            "REDIS_STREAM_TRIM_TIME",
            description="Time of removing a processed batch from its stream in ms (stream).",
            explicit_bucket_boundaries_advisory=HYPERSWITCH_BUCKETS,
        )
        self.shutdown_signal_received = meter.create_counter(
            "SHUTDOWN_SIGNAL_RECEIVED", description="Graceful shutdowns requested."
        )
        self.successful_shutdown = meter.create_counter(
            "SUCCESSFUL_SHUTDOWN", description="Shutdowns in which every batch in flight finished."
        )
        self.cleanup_time = meter.create_histogram(
            "CLEANUP_TIME",
            description="Time from the shutdown request to the consumer loop's end in ms.",
            explicit_bucket_boundaries_advisory=HYPERSWITCH_BUCKETS,
        )

    def shutdown(self, timeout_ms: float) -> None:
        """Flush the exporters and release the readers, waiting at most ``timeout_ms``
        (idempotent)."""
        if self.provider is not None:
            provider, self.provider = self.provider, None
            provider.shutdown(timeout_millis=timeout_ms)
