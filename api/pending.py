"""Pending work: the backlog per tenant and partition, and one partition's pending entries.

``GET /pending`` is also the autoscaling endpoint: ``total`` is the backlog over
every partition and tenant (entries are deleted once applied, so it is the sum
of the streams' lengths). It shows counts only and stays open; the entries
themselves (payment data) need the operator or admin token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from drainer.api.auth import Reader, audit
from drainer.api.deps import DrainerDep, check_entry_id, store_for_stream, store_for_tenant
from drainer.api.errors import ERROR_RESPONSES
from drainer.api.schemas import (
    ConsumerPending,
    Contents,
    PartitionPending,
    PendingEntries,
    PendingEntry,
    PendingSummary,
    TenantPending,
    entry_view_fields,
)
from drainer.consumers import inspect

router = APIRouter(tags=["pending"], responses=ERROR_RESPONSES)

MAX_PAGE = 1000
DEFAULT_PAGE = 100

StreamPath = Annotated[
    str,
    Path(
        description="A partition stream key, URL-encoded: `{shard_5}_DRAINER_STREAM` is "
        "`%7Bshard_5%7D_DRAINER_STREAM`.",
        examples=["%7Bshard_5%7D_DRAINER_STREAM"],
        min_length=1,
        max_length=512,
    ),
]


def _partition(p: inspect.PartitionPending) -> PartitionPending:
    return PartitionPending(
        partition=p.partition,
        stream=p.stream,
        backlog=p.backlog,
        pending=p.pending,
        consumers=[ConsumerPending(name=n, pending=c) for n, c in sorted(p.consumers.items())],
        oldest_entry_id=p.oldest_entry_id,
        oldest_entry_age_ms=p.oldest_entry_age_ms,
        oldest_pending_id=p.oldest_pending_id,
        oldest_pending_age_ms=p.oldest_pending_age_ms,
        oldest_pending_idle_ms=p.oldest_pending_idle_ms,
        max_deliveries=p.max_deliveries,
        deliveries=p.deliveries,
        held_by_hyperswitch=p.held_by_hyperswitch,
        hyperswitch_lock_ttl_ms=p.hyperswitch_lock_ttl_ms,
    )


@router.get("/pending", response_model=PendingSummary, summary="Backlog and pending entries")
async def pending_summary(
    drainer: DrainerDep,
    tenant: Annotated[str | None, Query(description="Only this tenant.", max_length=200)] = None,
    nonempty: Annotated[
        bool,
        Query(
            description="Only partitions with a backlog or pending entries, or held by "
            "Hyperswitch's Rust drainer."
        ),
    ] = False,
) -> PendingSummary:
    """Per tenant and partition: backlog, pending entries per consumer, oldest pending age.

    ``total`` (the backlog over everything listed) is what autoscaling reads.
    """
    stores = [store_for_tenant(drainer, tenant)] if tenant else list(drainer.stores.values())
    group = drainer.options.group
    tenants = []
    for store in stores:
        seen = await inspect.tenant_pending(store.redis, store.id, store.layout, group)
        parts = [
            p
            for p in seen.partitions
            if p.backlog or p.pending or p.held_by_hyperswitch or not nonempty
        ]
        tenants.append(
            TenantPending(
                tenant=seen.tenant,
                backlog=seen.backlog,
                pending=seen.pending,
                dead_letters=seen.dead_letters,
                partitions=[_partition(p) for p in parts],
            )
        )
    return PendingSummary(
        total=sum(t.backlog for t in tenants),
        pending=sum(t.pending for t in tenants),
        dead_letters=sum(t.dead_letters for t in tenants),
        tenants=tenants,
    )


@router.get(
    "/pending/{stream}/entries",
    response_model=PendingEntries,
    summary="The pending entries of one partition",
)
async def pending_entries(
    drainer: DrainerDep,
    operator: Reader,
    stream: StreamPath,
    consumer: Annotated[
        str | None, Query(description="Only entries pending on this consumer.", max_length=200)
    ] = None,
    min_idle_ms: Annotated[
        int | None,
        Query(description="Only entries idle at least this long.", ge=0, le=2**53),
    ] = None,
    after: Annotated[
        str | None,
        Query(description="Cursor: the `next_after` of the previous page.", max_length=64),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    contents: Annotated[
        Contents,
        Query(
            description="redacted: leave out everything taken from the entries' values "
            "(fields, operation.key, decode_error); full: show them (audited on drainer.audit)."
        ),
    ] = Contents.REDACTED,
) -> PendingEntries:
    """Oldest first: id, consumer, idle time, deliveries and the decoded operation.

    Redacted unless ``contents=full``.
    """
    store, partition = store_for_stream(drainer, stream)
    if after is not None:
        check_entry_id(after, "cursor after")
    if consumer is not None and not consumer:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "consumer must not be empty")
    items, cursor = await inspect.pending_entries(
        store.redis,
        stream,
        drainer.options.group,
        store.registry,
        consumer=consumer,
        min_idle_ms=min_idle_ms,
        after=after,
        limit=limit,
    )
    page = PendingEntries(
        tenant=store.id,
        stream=stream,
        partition=partition,
        items=[
            PendingEntry(
                id=e.entry_id,
                consumer=e.consumer,
                idle_ms=e.idle_ms,
                deliveries=e.deliveries,
                age_ms=e.age_ms,
                **entry_view_fields(e.view, contents),
            )
            for e in items
        ],
        next_after=cursor,
    )
    if contents is Contents.FULL:
        audit(
            operator,
            "read",
            f"pending entries of {stream}",
            f"{len(items)} shown in full",
            tenant=store.id,
            entries=[e.entry_id for e in items],
        )
    return page
