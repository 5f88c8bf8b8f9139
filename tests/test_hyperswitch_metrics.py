"""Hyperswitch's drainer metric names (meter DRAINER) over OTLP, beside the drainer's own."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from pydantic import ValidationError

from drainer.consumers.producer import Producer
from drainer.consumers.streams import StreamLayout
from drainer.main import open_drainer
from drainer.settings import Settings, TelemetrySettings
from tests.support.drainer import settings_from, write_config

Points = dict[tuple[str, frozenset[tuple[str, Any]]], Any]


class _Collector:
    """A tiny OTLP/HTTP receiver: keeps every decoded metrics request."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.paths: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                collector.paths.append(self.path)
                if self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    collector.requests.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def names(self, meter: str) -> dict[str, set[frozenset[tuple[str, str]]]]:
        """Instrument name -> the attribute sets of its points, of scope ``meter``."""
        out: dict[str, set[frozenset[tuple[str, str]]]] = {}
        for request in self.requests:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    if sm.scope.name != meter:
                        continue
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        points = getattr(metric, kind).data_points if kind else []
                        out.setdefault(metric.name, set()).update(
                            frozenset((a.key, a.value.string_value) for a in p.attributes)
                            for p in points
                        )
        return out


@pytest.fixture
def collector() -> Iterator[_Collector]:
    c = _Collector()
    thread = threading.Thread(target=c.server.serve_forever, daemon=True)
    thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute("CREATE TABLE item (id text PRIMARY KEY, n int CHECK (n >= 0))")
    yield connection
    await connection.close()


def _settings(tmp_path: Path, dsn: str, prefix: str, endpoint: str, **telemetry: Any) -> Settings:
    settings = settings_from(write_config(tmp_path / "hs.toml", dsn, prefix=prefix))
    tel = TelemetrySettings(otlp_endpoint=endpoint, traces_enabled=False, **telemetry)
    return settings.model_copy(update={"telemetry": tel})


async def _produce(redis: aioredis.Redis, prefix: str) -> None:
    """Five inserts and an update (applied), a bad column (parse) and a bad row (query)."""
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, prefix))
    for i in range(5):
        await producer.insert("item", {"id": f"i{i}", "n": i}, partition_key=f"k{i}")
    await producer.update("item", {"id": "i0"}, {"n": 100}, partition_key="k0")
    await producer.insert("item", {"id": "x", "nope": 1}, partition_key="k1")
    await producer.insert("item", {"id": "neg", "n": -1}, partition_key="k2")


async def _drain(settings: Settings, reader: InMemoryMetricReader | None = None) -> MetricsData:
    readers = [reader] if reader is not None else []
    drainer = await open_drainer(settings, burst=True, metric_readers=readers)
    try:
        await drainer.run()
        data = reader.get_metrics_data() if reader is not None else None
    finally:
        await drainer.close()
    return data if data is not None else MetricsData(resource_metrics=[])


def _points(data: MetricsData, meter: str) -> Points:
    """(name, attributes) -> data point, of the scope named ``meter``."""
    out: Points = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            if sm.scope.name != meter:
                continue
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    out[metric.name, frozenset((point.attributes or {}).items())] = point
    return out


def _sum(points: Points, name: str, **attributes: str) -> float:
    wanted = set(attributes.items())
    return sum(p.value for (n, attrs), p in points.items() if n == name and wanted <= attrs)


async def test_a_drain_records_hyperswitch_names_attributes_and_totals(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    collector: _Collector,
) -> None:
    await _produce(redis, redis_prefix)
    reader = InMemoryMetricReader()
    settings = _settings(tmp_path, pg_dsn, redis_prefix, collector.url, hyperswitch_metrics=True)
    data = await _drain(settings, reader)
    points = _points(data, "DRAINER")
    assert await conn.fetchval("SELECT n FROM item WHERE id = 'i0'") == 100

    ins = {"operation": "insert", "table": "item"}
    upd = {"operation": "update", "table": "item"}
    assert _sum(points, "SUCCESSFUL_QUERY_EXECUTION", **ins) == 5
    assert _sum(points, "SUCCESSFUL_QUERY_EXECUTION", **upd) == 1
    assert _sum(points, "JOBS_PICKED_PER_STREAM") == 8
    assert all(
        {k for k, _ in attrs} == {"stream"} for n, attrs in points if n == "JOBS_PICKED_PER_STREAM"
    )
    assert _sum(points, "STREAM_PARSE_FAIL", operation="deserialization") == 1
    assert _sum(points, "ERRORS_WHILE_QUERY_EXECUTION", **ins) == 1
    # one point per statement, per operation and table, in milliseconds
    for attrs in (ins, upd):
        time = points["QUERY_EXECUTION_TIME", frozenset(attrs.items())]
        assert time.count >= 1 and time.sum > 0
    # the delay: one point per committed entry, in whole seconds
    delay = [p for (n, _), p in points.items() if n == "DRAINER_DELAY_SECONDS"]
    assert sum(p.count for p in delay) == 6
    assert points["DRAINER_DELAY_SECONDS", frozenset(upd.items())].count == 1
    # the Redis calls: every read timed per stream, every batch's removal as the trim
    picked = {attrs for n, attrs in points if n == "JOBS_PICKED_PER_STREAM"}
    read_time = {attrs: p for (n, attrs), p in points.items() if n == "REDIS_STREAM_READ_TIME"}
    trim_time = {attrs: p for (n, attrs), p in points.items() if n == "REDIS_STREAM_TRIM_TIME"}
    assert picked and picked <= set(read_time) and picked == set(trim_time)
    assert all({k for k, _ in attrs} == {"stream"} for attrs in read_time)
    assert all(p.count >= 1 and p.sum > 0 for p in [*read_time.values(), *trim_time.values()])
    assert not any(n == "REDIS_STREAM_DEL_TIME" for n, _ in points)  # one script: the trim
    # a burst ends on an empty read of each partition
    assert _sum(points, "STREAM_EMPTY") >= 1
    assert points["STREAM_EMPTY", frozenset()].value == _sum(points, "STREAM_EMPTY")
    # the clean stop at the end of the burst, as Hyperswitch records it: no attributes
    assert points["SHUTDOWN_SIGNAL_RECEIVED", frozenset()].value == 1
    assert points["SUCCESSFUL_SHUTDOWN", frozenset()].value == 1
    cleanup = points["CLEANUP_TIME", frozenset()]
    assert cleanup.count == 1 and cleanup.sum >= 0
    # Hyperswitch's attributes only: no tenant
    assert not any("tenant" in dict(attrs) for _, attrs in points)
    # the reader is on Hyperswitch's provider only: the drainer's own meter is elsewhere
    assert not _points(data, "drainer")


async def test_hyperswitch_metrics_reach_an_otlp_collector(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    collector: _Collector,
) -> None:
    await _produce(redis, redis_prefix)
    settings = _settings(tmp_path, pg_dsn, redis_prefix, collector.url, hyperswitch_metrics=True)
    await _drain(settings)  # closing the drainer flushes the exporters
    names = collector.names("DRAINER")
    for name in (
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
    ):
        assert name in names, (name, sorted(names))
    insert = frozenset({("operation", "insert"), ("table", "item")})
    assert insert in names["SUCCESSFUL_QUERY_EXECUTION"]
    assert insert in names["QUERY_EXECUTION_TIME"]
    # the drainer's own names go to the same collector under their own meter
    assert "drainer_successful_queries" in collector.names("drainer")


async def test_off_by_default_nothing_under_hyperswitch_names(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    collector: _Collector,
) -> None:
    await _produce(redis, redis_prefix)
    settings = _settings(tmp_path, pg_dsn, redis_prefix, collector.url)
    assert settings.telemetry.hyperswitch_metrics is False
    drainer = await open_drainer(settings, burst=True)
    try:
        # the Redis calls are not timed when Hyperswitch's names are off
        assert drainer.telemetry.hyperswitch is None
        assert not any(s.pipeline.observer.times_redis for s in drainer.stores.values())
        await drainer.run()
    finally:
        await drainer.close()
    assert collector.names("DRAINER") == {}
    assert "drainer_successful_queries" in collector.names("drainer")


def test_hyperswitch_metrics_need_an_otlp_endpoint() -> None:
    with pytest.raises(ValidationError, match="hyperswitch_metrics"):
        TelemetrySettings(hyperswitch_metrics=True)
