"""Small asyncio helpers the consumer loop and the application share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

#: How long a shielded step (an acknowledgement) may still run after a cancel.
ACK_GRACE_S = 5.0


async def wait_or_stop(stop: asyncio.Event, delay_s: float) -> None:
    """Sleep ``delay_s`` or until ``stop`` is set, whichever comes first."""
    if delay_s <= 0 or stop.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay_s)


async def finish_shielded(aw: Awaitable[T]) -> T:
    """Await ``aw`` so that cancelling the caller does not cut it short."""
    task = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task], timeout=ACK_GRACE_S)
        raise


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until they end; a failure other than the cancel is raised.

    Unlike ``gather(..., return_exceptions=True)``, an exception a task ended with is
    not thrown away (the first one is raised, after every task has ended).
    """
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
