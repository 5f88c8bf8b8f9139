"""Telemetry endpoints: Prometheus metrics, and the trace id of an entity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from drainer.api.deps import DrainerDep
from drainer.api.errors import ERROR_RESPONSES
from drainer.api.schemas import TraceId
from drainer.metrics import PROMETHEUS_CONTENT_TYPE
from drainer.tracing import (
    derived_traceparent,
    format_span_id,
    format_trace_id,
    parent_span_id_for,
    trace_id_for,
)

router = APIRouter(tags=["telemetry"])

#: Longest global_id accepted (Hyperswitch's are well under 100 characters).
MAX_GLOBAL_ID_CHARS = 1024


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {PROMETHEUS_CONTENT_TYPE: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        },
        404: ERROR_RESPONSES[404],
    },
)
async def metrics(drainer: DrainerDep) -> Response:
    """Every metric of this process (backlog re-read from Redis when older than 1 s)."""
    telemetry = drainer.telemetry
    if not telemetry.metrics.enabled:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "metrics are disabled (telemetry.metrics_enabled = false)"
        )
    body = await telemetry.metrics.render()
    return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)


@router.get(
    "/trace-id",
    response_model=TraceId,
    summary="The trace of an entity",
    responses={422: ERROR_RESPONSES[422]},
)
async def trace_id(
    global_id: Annotated[
        str,
        Query(
            description="The entity key (the entries' global_id).",
            min_length=1,
            max_length=MAX_GLOBAL_ID_CHARS,
            examples=["mid_merchant1_pid_pay_123"],
        ),
    ],
) -> TraceId:
    """Where the drainer's spans of entries without a traceparent go: sha256(global_id)."""
    return TraceId(
        global_id=global_id,
        trace_id=format_trace_id(trace_id_for(global_id)),
        parent_span_id=format_span_id(parent_span_id_for(global_id)),
        traceparent=derived_traceparent(global_id),
    )
