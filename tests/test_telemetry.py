"""Traces keyed by global_id, metrics read back from /metrics, structured logs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drainer.consumers.observe import NO_OBSERVER
from drainer.consumers.producer import Producer, insert_op
from drainer.consumers.streams import StreamLayout
from drainer.main import open_drainer
from drainer.settings import Settings, TelemetrySettings
from drainer.telemetry import JsonFormatter, TextFormatter
from drainer.tracing import derived_traceparent, parent_span_id_for, trace_id_for
from tests.support.api import api_client
from tests.support.drainer import settings_from, wait_until, write_config

UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn)
    await connection.execute("CREATE TABLE item (id text PRIMARY KEY, n int)")
    yield connection
    await connection.close()


def _settings(tmp_path: Path, dsn: str, prefix: str, **telemetry: object) -> Settings:
    settings = settings_from(write_config(tmp_path / "t.toml", dsn, prefix=prefix))
    if telemetry:
        return settings.model_copy(update={"telemetry": TelemetrySettings(**telemetry)})
    return settings


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, frozenset(sample.labels.items())] = sample.value
    return out


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of ``name`` over samples carrying all of ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_trace_id_is_the_first_16_bytes_of_sha256_of_the_global_id() -> None:
    digest = hashlib.sha256(b"mid_m1_pid_pay_1").hexdigest()
    assert trace_id_for("mid_m1_pid_pay_1") == int(digest[:32], 16)
    assert parent_span_id_for("mid_m1_pid_pay_1") == int(digest[32:48], 16)
    header = derived_traceparent("mid_m1_pid_pay_1")
    assert header == f"00-{digest[:32]}-{digest[32:48]}-01"
    parsed = TraceContextTextMapPropagator().extract({"traceparent": header})
    assert trace.get_current_span(parsed).get_span_context().trace_id == int(digest[:32], 16)
    assert trace_id_for("a") != trace_id_for("b")


async def test_spans_of_one_entity_share_its_trace_and_traceparent_is_continued(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    exporter = InMemorySpanExporter()
    settings = _settings(tmp_path, pg_dsn, redis_prefix)
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    async with api_client(settings, span_processors=[SimpleSpanProcessor(exporter)]) as (
        drainer,
        client,
    ):
        assert drainer.telemetry.tracing_enabled
        await producer.insert("item", {"id": "a1", "n": 1}, partition_key="pay_A")
        await producer.update("item", {"id": "a1"}, {"n": 2}, partition_key="pay_A")
        await producer.insert(
            "item",
            {"id": "b1", "n": 1},
            partition_key="pay_B",
            traceparent=f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01",
        )
        await producer.insert(
            "item", {"id": "c1", "n": 1}, partition_key="pay_C", traceparent="garbage"
        )
        await producer.insert("item", {"id": "d1", "bad": 1}, partition_key="pay_D")

        async def applied() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM item WHERE n = 2") == 1) and (
                await conn.fetchval("SELECT count(*) FROM item") == 3
            )

        await wait_until(applied, timeout_s=20)

        async def dead_lettered() -> bool:
            return bool((await client.get("/pending")).json()["dead_letters"] == 1)

        await wait_until(dead_lettered, timeout_s=20)
        trace_a = (await client.get("/trace-id", params={"global_id": "pay_A"})).json()

    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    entries = {}
    for span in spans:
        if span.name == "drainer.apply":
            assert span.attributes is not None
            entries.setdefault(span.attributes["drainer.global_id"], []).append(span)
    batches = {s.context.span_id: s for s in spans if s.name == "drainer.batch"}

    a_spans = entries["pay_A"]
    assert len(a_spans) == 2
    for span in a_spans:
        assert span.context.trace_id == trace_id_for("pay_A")
        assert f"{span.context.trace_id:032x}" == trace_a["trace_id"]
        assert span.parent is not None and span.parent.is_remote
        assert span.parent.span_id == parent_span_id_for("pay_A")
        attrs = span.attributes or {}
        assert attrs["drainer.request_id"] and attrs["drainer.entry_id"]
        assert attrs["drainer.stream"] == producer.layout.stream_for("pay_A")
        # an update is tagged ``<table>_update``, as Hyperswitch writes it
        tags = {"insert": "item", "update": "item_update"}
        assert attrs["db.collection.name"] == tags[str(attrs["db.operation.name"])], attrs
        assert attrs["drainer.outcome"] == "applied"
        [link] = span.links
        batch = batches[link.context.span_id]
        assert batch.context.trace_id != span.context.trace_id  # a batch mixes entities
        assert batch.attributes and batch.attributes["drainer.batch.size"] >= 1
    assert {s.attributes["db.operation.name"] for s in a_spans if s.attributes} == {
        "insert",
        "update",
    }

    [b_span] = entries["pay_B"]
    assert f"{b_span.context.trace_id:032x}" == UPSTREAM_TRACE
    assert b_span.parent is not None and f"{b_span.parent.span_id:016x}" == UPSTREAM_SPAN

    [c_span] = entries["pay_C"]  # an unusable traceparent falls back to the entity's trace
    assert c_span.context.trace_id == trace_id_for("pay_C")

    [d_span] = entries["pay_D"]
    assert d_span.context.trace_id == trace_id_for("pay_D")
    assert d_span.status.status_code is trace.StatusCode.ERROR
    assert (d_span.attributes or {})["error.type"] == "unknown_column"


async def test_metrics_count_what_happened(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, redis: aioredis.Redis, conn: asyncpg.Connection
) -> None:
    layout = StreamLayout("DRAINER_STREAM", 8, redis_prefix)
    producer = Producer(redis, layout)
    # a partition whose two entries sit with a dead consumer (claim time far away)
    held = layout.stream_for("held")
    await redis.xgroup_create(held, "drainer", id="0", mkstream=True)
    for i in range(2):
        await producer.append(insert_op("item", {"id": f"h{i}", "n": i}), partition_key="held")
    await redis.xreadgroup("drainer", "ghost", {held: ">"}, count=10)
    config = write_config(
        tmp_path / "m.toml", pg_dsn, prefix=redis_prefix, drainer={"claim_min_idle_ms": 600_000}
    )
    settings = settings_from(config)
    drainer = await open_drainer(settings)
    task = asyncio.create_task(drainer.run())
    try:
        keys = [k for k in (f"k{i}" for i in range(40)) if layout.stream_for(k) != held][:5]
        for i, key in enumerate(keys):
            await producer.insert("item", {"id": f"i{i}", "n": i}, partition_key=key)
        await producer.update("item", {"id": "i0"}, {"n": 100}, partition_key=keys[0])
        await producer.insert("item", {"id": "x", "nope": 1}, partition_key=keys[1])

        async def drained() -> bool:
            return bool(await conn.fetchval("SELECT n FROM item WHERE id = 'i0'") == 100) and (
                await redis.xlen(layout.dead_letter_key) == 1
            )

        await wait_until(drained, timeout_s=20)
        samples = _samples((await drainer.telemetry.metrics.render()).decode())
        t1 = {"tenant": "t1"}
        assert (
            _value(samples, "drainer_successful_queries_total", operation="insert", table="item")
            == 5
        )
        assert (
            _value(samples, "drainer_successful_queries_total", operation="update", table="item")
            == 1
        )
        assert _value(samples, "drainer_jobs_picked_total", **t1) == 7
        assert _value(samples, "drainer_entries_handled_total", outcome="applied") == 6
        assert _value(samples, "drainer_entries_handled_total", outcome="dead") == 1
        assert _value(samples, "drainer_dead_letters_total", error_class="unknown_column") == 1
        assert _value(samples, "drainer_errors_total", **{"class": "parse"}) == 1
        assert _value(samples, "drainer_delay_seconds_count", **t1) == 6
        assert _value(samples, "drainer_query_execution_seconds_count", operation="update") == 1
        assert _value(samples, "drainer_query_execution_seconds_count", operation="insert") >= 1
        assert _value(samples, "drainer_batches_total", result="ok") >= 1
        # the backlog gauges: only the dead consumer's two entries are left
        assert samples["drainer_pending_entries", frozenset()] == 2
        assert _value(samples, "drainer_partition_pending_entries", stream=held) == 2
        assert _value(samples, "drainer_group_pending_entries", stream=held) == 2
        assert _value(samples, "drainer_dead_letter_entries", **t1) == 1
        for component in ("redis", "database", "loop"):
            assert _value(samples, "drainer_health", component=component) == 1
    finally:
        drainer.request_stop("test over")
        await task
    try:
        after = _samples(generate_latest(drainer.telemetry.metrics.registry).decode())
        assert _value(after, "drainer_shutdown_signal_received_total", reason="test over") == 1
        assert _value(after, "drainer_successful_shutdown_total") == 1
        assert _value(after, "drainer_cleanup_seconds_count") == 1
    finally:
        await drainer.close()


async def test_with_metrics_and_traces_off_the_loop_has_no_observer(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, conn: asyncpg.Connection
) -> None:
    settings = _settings(
        tmp_path, pg_dsn, redis_prefix, metrics_enabled=False, traces_enabled=False
    )
    async with api_client(
        settings, span_processors=[SimpleSpanProcessor(InMemorySpanExporter())]
    ) as (
        drainer,
        client,
    ):
        assert not drainer.telemetry.tracing_enabled
        assert all(s.pipeline.observer is NO_OBSERVER for s in drainer.stores.values())
        resp = await client.get("/metrics")
        assert resp.status_code == 404 and "metrics_enabled" in resp.json()["detail"]


async def test_two_drainers_in_one_process_keep_their_own_metrics(
    tmp_path: Path, pg_dsn: str, redis_prefix: str, conn: asyncpg.Connection
) -> None:
    settings = _settings(tmp_path, pg_dsn, redis_prefix)
    first = await open_drainer(settings)
    second = await open_drainer(settings)
    try:
        first.telemetry.metrics.requeued.add(3, {"tenant": "t1"})
        a = _samples((await first.telemetry.metrics.render()).decode())
        b = _samples((await second.telemetry.metrics.render()).decode())
        assert _value(a, "drainer_requeued_dead_letters_total") == 3
        assert _value(b, "drainer_requeued_dead_letters_total") == 0
    finally:
        await first.close()
        await second.close()


async def test_log_lines_about_an_entry_carry_its_global_id_and_request_id(
    tmp_path: Path,
    pg_dsn: str,
    redis_prefix: str,
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Producer(redis, StreamLayout("DRAINER_STREAM", 8, redis_prefix))
    caplog.set_level(logging.INFO)
    async with api_client(_settings(tmp_path, pg_dsn, redis_prefix)) as (_drainer, client):
        await producer.insert(
            "item", {"id": "x", "nope": 1}, partition_key="pay_9", request_id="r9"
        )

        async def dead_lettered() -> bool:
            return bool((await client.get("/pending")).json()["dead_letters"] == 1)

        await wait_until(dead_lettered, timeout_s=20)
    [record] = [r for r in caplog.records if r.getMessage().startswith("dead-lettered")]
    doc = json.loads(JsonFormatter().format(record))
    assert doc["global_id"] == "pay_9" and doc["request_id"] == "r9"
    assert doc["level"] == "warning" and doc["entry_id"] and doc["stream"]
    text = TextFormatter().format(record)
    assert "global_id=pay_9" in text and "request_id=r9" in text
