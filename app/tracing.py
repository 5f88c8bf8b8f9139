"""Traces keyed by ``global_id``: one trace per entity, whatever service wrote the entry.

An entry that carries a W3C ``traceparent`` continues that trace. An entry
without one is put in a trace whose id is derived from its ``global_id`` alone:

    digest   = SHA-256(UTF-8 bytes of global_id)
    trace_id = digest[0:16]   (as 32 lowercase hex digits; all zero -> ...01)
    span_id  = digest[16:24]  (the remote parent every drainer span of it hangs off)

so every drainer span of one entity lands in the same trace, and anyone holding
the entity key can compute where to look (``GET /trace-id?global_id=…``).

Spans are built after the batch commits, with the batch's start and end times,
as finished ``ReadableSpan`` objects handed straight to the span processors
(the batch or OTLP exporter). Going through ``Tracer.start_span`` cost about
30 µs per entry (sampler, attribute validation, context objects); a finished
span built from known-good values costs a few µs. Processors therefore see
``on_end`` only, never ``on_start`` (the SDK's batch and simple processors do
nothing on start). With tracing off nothing is built at all.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from drainer.consumers.entry import StreamSource
from drainer.db.executor import BatchEntry, BatchResult, Outcome
from drainer.metrics import OTLP_EXPORT_TIMEOUT_S

log = logging.getLogger("drainer.tracing")

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
#: Distinct global ids whose derived parent context is kept (hot entities repeat).
DERIVED_CONTEXT_CACHE_SIZE = 8192
OTLP_TRACES_PATH = "/v1/traces"
TRACER_NAME = "drainer"
SHUTDOWN_TIMEOUT_MS = 5_000

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OK = Status(StatusCode.UNSET)

_PROPAGATOR = TraceContextTextMapPropagator()
_EMPTY_CONTEXT = Context()


def _digest(global_id: str) -> bytes:
    return hashlib.sha256(global_id.encode("utf-8", "surrogateescape")).digest()


def trace_id_for(global_id: str) -> int:
    """The trace id of an entity: the first 16 bytes of SHA-256(global_id), never zero."""
    value = int.from_bytes(_digest(global_id)[:TRACE_ID_BYTES], "big")
    return value or 1


def parent_span_id_for(global_id: str) -> int:
    """The span id of the entity's derived remote parent: bytes 16..24 of the digest."""
    digest = _digest(global_id)
    value = int.from_bytes(digest[TRACE_ID_BYTES : TRACE_ID_BYTES + SPAN_ID_BYTES], "big")
    return value or 1


def format_trace_id(trace_id: int) -> str:
    """32 lowercase hex digits, as W3C trace context and trace UIs write it."""
    return f"{trace_id:032x}"


def format_span_id(span_id: int) -> str:
    """16 lowercase hex digits."""
    return f"{span_id:016x}"


def derived_traceparent(global_id: str) -> str:
    """A ``traceparent`` header that puts a request in the entity's derived trace."""
    return (
        f"00-{format_trace_id(trace_id_for(global_id))}-"
        f"{format_span_id(parent_span_id_for(global_id))}-01"
    )


@functools.lru_cache(maxsize=DERIVED_CONTEXT_CACHE_SIZE)
def entity_parent(global_id: str) -> SpanContext:
    """The remote, sampled parent that puts an entity's spans in its derived trace."""
    digest = _digest(global_id)  # once for both ids: this runs per entry on a cache miss
    return SpanContext(
        trace_id=int.from_bytes(digest[:TRACE_ID_BYTES], "big") or 1,
        span_id=int.from_bytes(digest[TRACE_ID_BYTES : TRACE_ID_BYTES + SPAN_ID_BYTES], "big") or 1,
        is_remote=True,
        trace_flags=_SAMPLED,
    )


def parse_traceparent(traceparent: str) -> SpanContext | None:
    """The span context of a W3C ``traceparent`` header, or None if it is not valid."""
    context = _PROPAGATOR.extract({"traceparent": traceparent}, context=_EMPTY_CONTEXT)
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def entry_parent(global_id: str | None, traceparent: str | None) -> SpanContext | None:
    """Where an entry's span belongs: its ``traceparent``, else its entity's trace."""
    if traceparent:
        parent = parse_traceparent(traceparent)
        if parent is not None:
            return parent
    if global_id:
        return entity_parent(global_id)
    return None


def make_span_recorder(
    service_name: str,
    otlp_endpoint: str | None,
    processors: Sequence[SpanProcessor] = (),
    resource: Resource | None = None,
) -> SpanRecorder | None:
    """A recorder exporting to OTLP and/or ``processors``; None when neither (no spans made)."""
    all_processors = list(processors)
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning(
                "telemetry.otlp_endpoint is set but the OTLP exporter is not installed "
                "(pip install 'drainer[otlp]'): traces are not exported"
            )
        else:
            endpoint = otlp_endpoint.rstrip("/") + OTLP_TRACES_PATH
            exporter = OTLPSpanExporter(endpoint=endpoint, timeout=OTLP_EXPORT_TIMEOUT_S)
            all_processors.append(BatchSpanProcessor(exporter))
    if not all_processors:
        return None
    return SpanRecorder(all_processors, resource or Resource.create({"service.name": service_name}))


class SpanRecorder:
    """Builds finished spans and hands them to the span processors."""

    def __init__(self, processors: Sequence[SpanProcessor], resource: Resource) -> None:
        self.processors = list(processors)
        self.resource = resource
        self.scope = InstrumentationScope(TRACER_NAME)
        self._ids = RandomIdGenerator()

    def record(
        self,
        name: str,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        start_ns: int,
        end_ns: int,
        *,
        links: Sequence[Link] = (),
        status: Status = _OK,
    ) -> SpanContext | None:
        """Record one finished CONSUMER span; None when its parent was not sampled."""
        if parent is not None and not parent.trace_flags.sampled:
            return None  # the producer decided not to trace this request
        context = SpanContext(
            trace_id=parent.trace_id if parent is not None else self._ids.generate_trace_id(),
            span_id=self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=_SAMPLED,
        )
        span = ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            links=links,
            kind=SpanKind.CONSUMER,
            status=status,
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self.scope,
        )
        for processor in self.processors:
            processor.on_end(span)
        return context

    def shutdown(self, timeout_ms: float = SHUTDOWN_TIMEOUT_MS) -> None:
        """Flush and stop every processor (exports what is queued, for at most
        ``timeout_ms`` in all)."""
        deadline = time.monotonic() + timeout_ms / 1000
        for processor in self.processors:
            processor.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000))
            processor.shutdown()


class BatchTracer:
    """Makes the spans of one tenant's batches: one per batch, one per handled entry."""

    def __init__(self, recorder: SpanRecorder, tenant: str) -> None:
        self.recorder = recorder
        self.tenant = tenant

    def batch(
        self,
        stream: str,
        read_mode: str,
        batch: Sequence[BatchEntry[StreamSource]],
        result: BatchResult[StreamSource] | None,
        error: BaseException | None,
        started_ns: int,
        ended_ns: int,
    ) -> None:
        """Record a batch span and a span per entry it handled (or tried, on failure)."""
        attributes: dict[str, Any] = {
            "drainer.tenant": self.tenant,
            "drainer.stream": stream,
            "drainer.read_mode": read_mode,
            "drainer.batch.size": len(batch),
        }
        status = _OK
        if result is not None:
            attributes["drainer.batch.handled"] = len(result.handled)
        else:
            status = Status(StatusCode.ERROR, str(error))
        # a batch mixes entities: it is a trace of its own, linked from every entry span
        context = self.recorder.record(
            "drainer.batch", None, attributes, started_ns, ended_ns, status=status
        )
        links = (Link(context),) if context is not None else ()
        if result is None:
            for entry in batch:
                self._entry(stream, entry, "failed", error, links, started_ns, ended_ns)
            return
        for handled in result.handled:
            self._entry(
                stream,
                handled.entry,
                handled.outcome.value,
                handled.error,
                links,
                started_ns,
                ended_ns,
            )
        if result.retry is not None:
            self._entry(
                stream, result.retry, "retry", result.retry_error, links, started_ns, ended_ns
            )

    def _entry(
        self,
        stream: str,
        entry: BatchEntry[StreamSource],
        outcome: str,
        error: BaseException | None,
        links: Sequence[Link],
        started_ns: int,
        ended_ns: int,
    ) -> None:
        raw, envelope = entry.source.raw, entry.source.envelope
        attributes: dict[str, Any] = {
            "drainer.stream": stream,
            "drainer.entry_id": entry.entry_id,
            "drainer.outcome": outcome,
        }
        global_id = traceparent = None
        if envelope is not None:
            global_id, traceparent = envelope.global_id, envelope.traceparent
            attributes["drainer.global_id"] = global_id
            attributes["drainer.request_id"] = envelope.request_id
            attributes["db.operation.name"] = envelope.operation.kind.value
            attributes["db.collection.name"] = envelope.operation.tag
        elif raw.fields:
            global_id = raw.fields.get("global_id")
            traceparent = raw.fields.get("traceparent")
            if global_id:
                attributes["drainer.global_id"] = global_id
            if request_id := raw.fields.get("request_id"):
                attributes["drainer.request_id"] = request_id
        if entry.attempt > 1:
            attributes["drainer.attempt"] = entry.attempt
        status = _OK
        if error is not None and outcome in (Outcome.DEAD.value, "retry", "failed"):
            status = Status(StatusCode.ERROR, str(error))
            attributes["error.type"] = getattr(error, "error_class", type(error).__name__)
        self.recorder.record(
            "drainer.apply",
            entry_parent(global_id, traceparent),
            attributes,
            started_ns,
            ended_ns,
            links=links,
            status=status,
        )
