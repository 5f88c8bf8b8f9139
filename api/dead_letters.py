"""Dead letters: list and filter, inspect, requeue (one or by filter), discard.

Reading them needs the operator (or admin) token: they hold whole entries, i.e.
payment data. Listings are redacted unless ``contents=full`` is asked for; every
full read is audited.

Requeue appends the original entry to the partition stream it came from and
removes the dead letter in one step (one Lua script; on Redis Cluster the two
keys are in different slots, so it is XADD then XDEL there). The requeued
entry gets a new id and is applied like any new entry. A ``stream_went_back``
dead letter was most likely applied already (its id fell at or below the
partition's watermark): requeueing it needs ``force``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from drainer.api.auth import Admin, Operator, Reader, audit
from drainer.api.deps import Drainer, DrainerDep, check_entry_id, store_for_tenant
from drainer.api.errors import ERROR_RESPONSES
from drainer.api.schemas import (
    ENTRY_ID_EXAMPLE,
    Contents,
    DeadLetterOut,
    DeadLetterPage,
    Discarded,
    Released,
    RequeueBatch,
    Requeued,
    RequeueFilter,
    entry_view_fields,
)
from drainer.consumers import inspect, replay
from drainer.consumers.dead_letter import DeadLetter, queued_of
from drainer.db import parking
from drainer.db.errors import StreamWentBack
from drainer.store import Store

router = APIRouter(tags=["dead letters"], responses=ERROR_RESPONSES)

MAX_PAGE = 1000
DEFAULT_PAGE = 100
CURSOR_SEPARATOR = ":"
#: A cursor's start at a tenant's first dead letter.
SCAN_START = "0-0"
#: Dead letters read per step of a requeue by filter.
REQUEUE_SCAN_PAGE = 100
#: Ids a refused requeue by filter names as examples.
SHOWN_IDS = 5
WENT_BACK = StreamWentBack.error_class
PARKED = parking.EntryParked.error_class
#: Most partition entries a release looks through for the entity's queued entries.
RELEASE_SCAN_MAX = 10_000
WENT_BACK_WHY = (
    "most likely applied already: it was delivered for the first time with an id at or "
    "below the partition's applied watermark (the stream went back, e.g. Redis was restored "
    "from an older snapshot)"
)
WENT_BACK_RISK = "requeueing would apply it a second time and can set rows back to older values"
WENT_BACK_INSTEAD = (
    "check whether its change is in the database: if it is, discard the dead letter "
    "(DELETE /dead-letters/{id}); only if it is not, requeue it with force=true"
)
WENT_BACK_WARNING = f"{WENT_BACK_WHY}. {WENT_BACK_RISK.capitalize()}. Instead, {WENT_BACK_INSTEAD}."

DeadLetterId = Annotated[
    str,
    Path(
        description="A dead letter's id in its tenant's dead-letter stream.",
        examples=[ENTRY_ID_EXAMPLE],
        min_length=3,
        max_length=41,
    ),
]
TenantQuery = Annotated[
    str | None,
    Query(description="The tenant (needed only if two tenants have this id).", max_length=200),
]
_CONTENTS = (
    "redacted: leave out everything taken from the entry's values (fields, operation.key, "
    "error, decode_error); full: show them (audited on drainer.audit)."
)
ListContents = Annotated[Contents, Query(description=_CONTENTS)]
ForceQuery = Annotated[
    bool,
    Query(
        description="Requeue even a stream_went_back dead letter (most likely applied "
        "already: requeueing applies it again)."
    ),
]


def _out(
    tenant: str, letter: DeadLetter, view: inspect.EntryView, contents: Contents
) -> DeadLetterOut:
    return DeadLetterOut(
        id=letter.id,
        tenant=tenant,
        source_stream=letter.source_stream,
        source_id=letter.source_id,
        error_class=letter.error_class,
        error=letter.error if contents is Contents.FULL else None,
        attempts=letter.attempts,
        dead_lettered_at=datetime.fromtimestamp(letter.dead_lettered_at, UTC),
        warning=WENT_BACK_WARNING if letter.error_class == WENT_BACK else None,
        **entry_view_fields(view, contents),
    )


def _audit_read(
    operator: Operator, target: str, items: Sequence[DeadLetterOut], contents: Contents
) -> None:
    if contents is Contents.FULL:
        audit(
            operator,
            "read",
            target,
            f"{len(items)} shown in full",
            entries=[f"{d.tenant}/{d.id}" for d in items],
        )


def _ms(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # naive means UTC
    return max(0, int(aware.timestamp() * 1000))


def _filter(
    table: str | None, error_class: str | None, since: datetime | None, until: datetime | None
) -> inspect.DeadLetterFilter:
    flt = inspect.DeadLetterFilter(table, error_class, _ms(since), _ms(until))
    if flt.since_ms is not None and flt.until_ms is not None and flt.since_ms > flt.until_ms:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "since is later than until")
    return flt


def _stores(drainer: Drainer, tenant: str | None) -> list[Store]:
    return [store_for_tenant(drainer, tenant)] if tenant else list(drainer.stores.values())


def _parse_cursor(drainer: Drainer, cursor: str) -> tuple[str, str]:
    tenant, sep, start = cursor.partition(CURSOR_SEPARATOR)
    if not sep or tenant not in drainer.stores or not inspect.valid_entry_id(start):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"bad cursor {cursor[:80]!r}: pass the next_cursor of the previous page",
        )
    return tenant, start


@router.get("/dead-letters", response_model=DeadLetterPage, summary="List dead letters")
async def list_dead_letters(
    drainer: DrainerDep,
    operator: Reader,
    tenant: Annotated[str | None, Query(description="Only this tenant.", max_length=200)] = None,
    table: Annotated[
        str | None, Query(description="Table name or table tag.", max_length=200)
    ] = None,
    error_class: Annotated[
        str | None,
        Query(description="e.g. constraint, no_row, malformed, coercion.", max_length=100),
    ] = None,
    since: Annotated[datetime | None, Query(description="Dead-lettered at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Dead-lettered at or before.")] = None,
    cursor: Annotated[
        str | None, Query(description="The next_cursor of the previous page.", max_length=300)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    contents: ListContents = Contents.REDACTED,
) -> DeadLetterPage:
    """Oldest first, per tenant in configuration order; filters combine with AND.

    Redacted unless ``contents=full``.
    """
    flt = _filter(table, error_class, since, until)
    stores = _stores(drainer, tenant)
    start_tenant, start = _parse_cursor(drainer, cursor) if cursor else (stores[0].id, None)
    ids = [s.id for s in stores]
    if start_tenant not in ids:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the cursor is for another tenant")
    items: list[DeadLetterOut] = []
    # one budget for the whole request, over every tenant: a filter that matches little
    # reads at most this many dead letters, then hands back a cursor
    budget = drainer.settings.server.dead_letter_scan_max
    scanned = 0
    rest = stores[ids.index(start_tenant) :]
    for n, store in enumerate(rest):
        page = await inspect.scan_dead_letters(
            store.dead_letters,
            store.registry,
            flt,
            start=start if store.id == start_tenant else None,
            limit=limit - len(items),
            scan_max=budget - scanned,
        )
        scanned += page.scanned
        items.extend(_out(store.id, letter, view, contents) for letter, view in page.items)
        after: str | None = None
        if page.next_start is not None:
            after = f"{store.id}{CURSOR_SEPARATOR}{page.next_start}"
        elif scanned >= budget and n + 1 < len(rest):
            after = f"{rest[n + 1].id}{CURSOR_SEPARATOR}{SCAN_START}"
        if after is not None:
            _audit_read(operator, "dead letters", items, contents)
            return DeadLetterPage(items=items, next_cursor=after, scanned=scanned)
    _audit_read(operator, "dead letters", items, contents)
    return DeadLetterPage(items=items, next_cursor=None, scanned=scanned)


async def _find(
    drainer: Drainer, dead_letter_id: str, tenant: str | None
) -> tuple[Store, DeadLetter]:
    check_entry_id(dead_letter_id, "dead letter id")
    found = []
    for store in _stores(drainer, tenant):
        letter = await store.dead_letters.get(dead_letter_id)
        if letter is not None:
            found.append((store, letter))
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {dead_letter_id}")
    if len(found) > 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"dead letter {dead_letter_id} exists for tenants "
            f"{', '.join(s.id for s, _ in found)}: pass ?tenant=",
        )
    return found[0]


@router.get(
    "/dead-letters/{dead_letter_id}", response_model=DeadLetterOut, summary="One dead letter"
)
async def get_dead_letter(
    drainer: DrainerDep,
    operator: Reader,
    dead_letter_id: DeadLetterId,
    tenant: TenantQuery = None,
    contents: Annotated[Contents, Query(description=_CONTENTS)] = Contents.FULL,
) -> DeadLetterOut:
    """The original entry, decoded, with where it came from and why it was dead-lettered.

    In full unless ``contents=redacted`` (one dead letter is asked for by id).
    """
    store, letter = await _find(drainer, dead_letter_id, tenant)
    out = _out(store.id, letter, inspect.view_entry(letter.fields, store.registry), contents)
    _audit_read(operator, f"dead letter {store.id}/{letter.id}", [out], contents)
    return out


async def _requeue(
    drainer: Drainer, operator: Operator, store: Store, letter: DeadLetter, *, force: bool
) -> Requeued:
    target = f"dead letter {store.id}/{letter.id}"
    keys = {
        "global_id": letter.fields.get("global_id"),
        "request_id": letter.fields.get("request_id"),
    }
    if letter.error_class == WENT_BACK and not force:
        audit(operator, "requeue", target, "refused: stream_went_back without force", **keys)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"dead letter {letter.id} is stream_went_back, {WENT_BACK_WHY}; its error: "
            f"{letter.error}. Refused: {WENT_BACK_RISK}. Instead, {WENT_BACK_INSTEAD}.",
        )
    released: list[Released] = []
    try:
        if _parks(store, letter):
            new_id, released = await _release(store, letter, discard=False)
        else:
            new_id = (await replay.requeue(store.pipeline, letter)).new_entry_id
    except replay.ReplayRefused as exc:
        audit(operator, "requeue", target, f"refused: {exc}", tenant=store.id, **keys)
        raise
    except HTTPException as exc:
        audit(operator, "requeue", target, f"refused: {exc.detail}", tenant=store.id, **keys)
        raise
    stream = letter.source_stream
    if new_id is None:
        audit(operator, "requeue", target, "gone (requeued or discarded meanwhile)", **keys)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"dead letter {letter.id} was requeued or discarded meanwhile",
        )
    drainer.telemetry.metrics.requeued.add(1, {"tenant": store.id})
    audit(
        operator,
        "requeue",
        target,
        f"appended to {stream} as {new_id}"
        + (f", then {len(released)} parked behind it, in order" if released else ""),
        tenant=store.id,
        stream=stream,
        entry_id=new_id,
        error_class=letter.error_class,
        entries=[f"{store.id}/{r.id}" for r in released],
        **keys,
    )
    return Requeued(
        id=letter.id, tenant=store.id, stream=stream, new_entry_id=new_id, released=released
    )


def _parks(store: Store, letter: DeadLetter) -> bool:
    """True when the dead letter's entity may be parked (park_entity, a known partition)."""
    return bool(
        store.executor.park_entity
        and letter.fields.get("global_id")
        and store.pipeline.layout.partition_of_stream(letter.source_stream) is not None
    )


async def _release(
    store: Store, letter: DeadLetter, *, discard: bool
) -> tuple[str | None, list[Released]]:
    """Requeue (or discard) a dead letter under park_entity, releasing what it parked.

    Returns the dead letter's new entry id (discard: its own id if it existed, else
    None) and the parked dead letters put back after it, in order. Runs under the
    partition's watermark lock (db.parking.release), so no batch commits meanwhile.
    """
    stream, dl = letter.source_stream, store.dead_letters
    gid = letter.fields["global_id"]

    async def nothing_queued_ahead() -> None:
        # entries of the entity still queued would be read after the park is gone and
        # apply before the released ones: wait until they are read (and parked) too
        queued = await queued_of(store.redis, stream, gid, scan_max=RELEASE_SCAN_MAX)
        if queued == 0:
            return
        what = (
            f"more than {RELEASE_SCAN_MAX} entries are"
            if queued is None
            else f"{queued} entries of global_id {gid!r} are"
        )
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{what} still queued on {stream}: releasing now would apply them before the "
            "parked ones. Try again when the partition has read them (they are parked "
            "behind the same head and released with it)",
        )

    async def put_back(park: parking.Park | None) -> tuple[tuple[str | None, list[Released]], bool]:
        is_head = park is not None and park.head_id == letter.source_id
        if park is not None and not is_head and letter.error_class == PARKED:
            head = park.head_dead_letter_id
            if head and await dl.get(head) is not None:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"dead letter {letter.id} is parked behind dead letter {head} "
                    f"({stream} {park.head_id}): requeue or discard that one first, which "
                    "releases this one in order",
                )
            if not discard:
                # the head is gone (a release cut short, see docs/operations.md): finish it
                await nothing_queued_ahead()
                moved = await dl.put_back(stream, park.parked)
                return _released_after(letter.id, park.parked, moved), True
        if park is None or not is_head:
            # not a park's head: what it does without park_entity
            if discard:
                existed = await dl.discard([letter.id]) > 0
                return (letter.id if existed else None, []), False
            [new_id] = await dl.put_back(stream, [letter.id])
            return (new_id, []), False
        await nothing_queued_ahead()
        if discard:
            existed = await dl.get(letter.id) is not None
            moved = await dl.put_back(stream, park.parked, discard_id=letter.id)
            if not existed:
                return (None, _released(park.parked, moved)), True
            return (letter.id, _released(park.parked, moved)), True
        moved = await dl.put_back(stream, [letter.id, *park.parked])
        return (moved[0], _released(park.parked, moved[1:])), True

    try:
        return await parking.release(store.engine, stream, gid, put_back)
    except parking.PartitionLocked as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"partition {stream} stayed locked by a batch in flight: try again",
        ) from exc


def _released(ids: Sequence[str], moved: Sequence[str | None]) -> list[Released]:
    return [Released(id=i, new_entry_id=m) for i, m in zip(ids, moved, strict=True) if m]


def _released_after(
    target: str, ids: Sequence[str], moved: Sequence[str | None]
) -> tuple[str | None, list[Released]]:
    """A parked dead letter's own new id among a whole park put back, and the others."""
    released = _released(ids, moved)
    own = next((r.new_entry_id for r in released if r.id == target), None)
    return own, [r for r in released if r.id != target]


@router.post(
    "/dead-letters/{dead_letter_id}/requeue",
    response_model=Requeued,
    summary="Requeue one dead letter onto its partition stream",
)
async def requeue_one(
    drainer: DrainerDep,
    operator: Admin,
    dead_letter_id: DeadLetterId,
    tenant: TenantQuery = None,
    force: ForceQuery = False,
) -> Requeued:
    """Append it to the partition stream it came from and remove it, atomically.

    A ``stream_went_back`` dead letter is a 409 unless ``force=true``.
    """
    store, letter = await _find(drainer, dead_letter_id, tenant)
    return await _requeue(drainer, operator, store, letter, force=force)


async def _matching(
    ranges: Sequence[tuple[Store, str | None]], flt: inspect.DeadLetterFilter
) -> AsyncGenerator[tuple[Store, DeadLetter]]:
    """The dead letters matching ``flt`` up to each store's fixed end id, oldest first."""
    for store, end in ranges:
        start: str | None = None
        while end is not None:
            page = await inspect.scan_dead_letters(
                store.dead_letters,
                store.registry,
                flt,
                start=start,
                end=end,
                limit=REQUEUE_SCAN_PAGE,
            )
            for letter, _view in page.items:
                yield store, letter
            if page.next_start is None:
                break
            start = page.next_start


async def _went_back_among(
    ranges: Sequence[tuple[Store, str | None]], flt: inspect.DeadLetterFilter, limit: int
) -> list[str]:
    """The stream_went_back dead letters among the first ``limit`` that match."""
    found: list[str] = []
    seen = 0
    async with contextlib.aclosing(_matching(ranges, flt)) as letters:
        async for store, letter in letters:
            seen += 1
            if seen > limit:
                break
            if letter.error_class == WENT_BACK:
                found.append(f"{store.id}/{letter.id}")
    return found


@router.post(
    "/dead-letters/requeue",
    response_model=RequeueBatch,
    summary="Requeue every dead letter matching a filter",
)
async def requeue_matching(
    drainer: DrainerDep, operator: Admin, body: RequeueFilter
) -> RequeueBatch:
    """Requeue the matching dead letters that exist now, oldest first, up to ``limit``.

    Without any filter, ``"all": true`` is required. Dead letters written while it
    runs (an entry failing again) are left alone. If any of them is
    ``stream_went_back``, nothing is requeued (409) unless ``"force": true``.
    """
    if not (body.tenant or body.table or body.error_class or body.since or body.until or body.all):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            'no filter given: set tenant, table, error_class, since or until, or "all": true',
        )
    flt = _filter(body.table, body.error_class, body.since, body.until)
    # each tenant's end is fixed now: the check below and the requeue see the same letters
    ranges = [
        (store, await inspect.last_dead_letter_id(store.redis, store.dead_letters))
        for store in _stores(drainer, body.tenant)
    ]
    if not body.force and body.error_class in (None, WENT_BACK):
        went_back = await _went_back_among(ranges, flt, body.limit)
        if went_back:
            shown = ", ".join(went_back[:SHOWN_IDS]) + (
                ", ..." if len(went_back) > SHOWN_IDS else ""
            )
            audit(
                operator,
                "requeue",
                "dead letters matching a filter",
                "refused: stream_went_back without force",
                entries=went_back,
            )
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{len(went_back)} of the matching dead letters are stream_went_back "
                f"({shown}): each is {WENT_BACK_WHY}. Nothing was requeued: {WENT_BACK_RISK}. "
                f"Instead, for each, {WENT_BACK_INSTEAD}; to requeue only the others, filter "
                'by their error_class; to requeue these too, send "force": true.',
            )
    done: list[Requeued] = []
    truncated = False
    async with contextlib.aclosing(_matching(ranges, flt)) as letters:
        async for store, letter in letters:
            if len(done) >= body.limit:
                truncated = True
                break
            if letter.error_class == WENT_BACK and not body.force:
                continue  # never without force (the check above saw the same letters)
            try:
                done.append(await _requeue(drainer, operator, store, letter, force=body.force))
            except (HTTPException, replay.ReplayRefused):
                continue  # gone meanwhile or not requeueable: logged, skip it
    return RequeueBatch(requeued=done, count=len(done), truncated=truncated)


@router.delete(
    "/dead-letters/{dead_letter_id}", response_model=Discarded, summary="Discard a dead letter"
)
async def discard(
    drainer: DrainerDep, operator: Admin, dead_letter_id: DeadLetterId, tenant: TenantQuery = None
) -> Discarded:
    """Delete it for good (its operation is never applied)."""
    store, letter = await _find(drainer, dead_letter_id, tenant)
    released: list[Released] = []
    if _parks(store, letter):
        try:
            gone, released = await _release(store, letter, discard=True)
        except HTTPException as exc:
            audit(operator, "discard", f"dead letter {store.id}/{letter.id}", str(exc.detail))
            raise
        deleted = gone is not None
    else:
        deleted = await store.dead_letters.discard([letter.id]) > 0
    audit(
        operator,
        "discard",
        f"dead letter {store.id}/{letter.id}",
        ("deleted" if deleted else "already gone")
        + (f"; {len(released)} parked behind it requeued, in order" if released else ""),
        tenant=store.id,
        global_id=letter.fields.get("global_id"),
        request_id=letter.fields.get("request_id"),
        error_class=letter.error_class,
        entries=[f"{store.id}/{r.id}" for r in released],
    )
    if not deleted:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {dead_letter_id}")
    return Discarded(id=letter.id, tenant=store.id, deleted=True, released=released)
