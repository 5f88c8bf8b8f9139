"""Replay: apply a pending entry now, through the normal fenced path, keeping order.

Replaying entry E applies every entry of its partition still pending at or
before E first, in stream order (see :mod:`consumers.replay`): an operator can
unstick a partition without waiting for ``claim_min_idle_ms``, and never
applies E ahead of an older change to the same entity.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from drainer.api.auth import Admin, audit
from drainer.api.deps import Drainer, DrainerDep, check_entry_id, store_for_stream
from drainer.api.errors import ERROR_RESPONSES
from drainer.api.pending import StreamPath
from drainer.api.schemas import ENTRY_ID_EXAMPLE, ReplayedEntry, ReplayResult
from drainer.consumers.replay import Replayer, ReplayRefused

router = APIRouter(tags=["pending"], responses=ERROR_RESPONSES)

EntryIdPath = Annotated[
    str,
    Path(
        description="A stream entry id, `<milliseconds>-<sequence>`.",
        examples=[ENTRY_ID_EXAMPLE],
        min_length=3,
        max_length=41,
    ),
]


def replayer_for(request: Request, drainer: Drainer, tenant: str) -> Replayer:
    """The tenant's replayer (one per app: it serialises replays of a partition)."""
    replayers: dict[str, Replayer] = request.app.state.replayers
    replayer = replayers.get(tenant)
    if replayer is None:
        store = drainer.stores[tenant]
        replayer = Replayer(store.pipeline, store.redis, drainer.options)
        replayers[tenant] = replayer
    return replayer


@router.post(
    "/replay/{stream}/{entry_id}",
    response_model=ReplayResult,
    summary="Apply a pending entry now (and the entries pending before it, in order)",
)
async def replay(
    request: Request,
    drainer: DrainerDep,
    operator: Admin,
    stream: StreamPath,
    entry_id: EntryIdPath,
) -> ReplayResult:
    """Claim the entry (and any older pending ones of its partition), apply, ack.

    The outcome is reported honestly: ``skipped`` when the fence found it already
    applied, ``dead`` when it was dead-lettered, ``retry`` when an update or delete
    still matches no row (it stays pending). 404 when the entry is not pending.
    """
    check_entry_id(entry_id)
    store, _ = store_for_stream(drainer, stream)
    replayer = replayer_for(request, drainer, store.id)
    target = f"{stream}/{entry_id}"
    try:
        report = await replayer.replay(stream, entry_id)
    except ReplayRefused as exc:
        audit(operator, "replay", target, f"refused: {exc}", tenant=store.id)
        drainer.telemetry.metrics.replays.add(1, {"tenant": store.id, "outcome": "refused"})
        raise
    except Exception as exc:
        audit(operator, "replay", target, f"failed: {exc}", tenant=store.id)
        drainer.telemetry.metrics.replays.add(1, {"tenant": store.id, "outcome": "failed"})
        raise
    drainer.telemetry.metrics.replays.add(1, {"tenant": store.id, "outcome": report.outcome})
    last = report.entries[-1] if report.entries else None
    audit(
        operator,
        "replay",
        target,
        report.outcome,
        tenant=store.id,
        global_id=last.global_id if last else None,
        request_id=last.request_id if last else None,
        entries=[e.entry_id for e in report.entries],
        message=report.message,
    )
    return ReplayResult(
        tenant=store.id,
        stream=stream,
        entry_id=entry_id,
        outcome=report.outcome,
        message=report.message,
        consumer=report.consumer,
        watermark=report.watermark,
        entries=[
            ReplayedEntry(
                id=e.entry_id,
                outcome=e.outcome,
                previous_consumer=e.previous_consumer,
                attempt=e.attempt,
                error=e.error,
                error_class=e.error_class,
                global_id=e.global_id,
                request_id=e.request_id,
            )
            for e in report.entries
        ],
    )
