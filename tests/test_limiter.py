"""The partition limiter: a bound on rounds at once, sized by the throughput it measures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drainer.consumers.limiter import DEFAULT_MIN_LIMIT, PartitionLimiter


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_no_more_rounds_than_the_limit_run_and_waiters_enter_in_order() -> None:
    limiter = PartitionLimiter(2, adaptive=False)
    gates = [asyncio.Event() for _ in range(5)]
    entered: list[int] = []

    async def round_(i: int) -> None:
        async with limiter:
            entered.append(i)
            await gates[i].wait()

    tasks = [asyncio.create_task(round_(i)) for i in range(5)]
    await _settle()
    assert entered == [0, 1] and limiter.in_use == 2
    tasks[2].cancel()  # a waiter cancelled: it never enters and takes no slot
    gates[0].set()
    await _settle()
    assert entered == [0, 1, 3]
    gates[1].set()
    gates[3].set()
    await _settle()
    assert entered == [0, 1, 3, 4]
    gates[4].set()
    await asyncio.gather(*(t for i, t in enumerate(tasks) if i != 2))
    assert tasks[2].cancelled() and limiter.in_use == 0


async def _window(limiter: PartitionLimiter, clock: Clock, rate: Callable[[int], float]) -> int:
    """One window with every slot taken, draining at ``rate(limit)``; returns that limit."""
    limit = held = limiter.limit
    for _ in range(held):
        await limiter.acquire()
    clock.now += limiter.window_s
    limiter.done(round(rate(limit) * limiter.window_s))
    for _ in range(held):
        limiter.release()
    return limit


async def test_the_limit_climbs_to_the_best_throughput_and_stays_around_it() -> None:
    """From 16, on a curve that peaks at 4 (each step away costs a fifth): it comes down
    to 4 and then only probes its neighbours, one window each."""
    clock = Clock()
    limiter = PartitionLimiter(16, clock=clock)

    def rate(limit: int) -> float:
        return 10_000 * 0.8 ** abs(limit - 4)

    limits = [await _window(limiter, clock, rate) for _ in range(60)]
    assert limits[0] == 16
    first = limits.index(4)
    assert first <= 13  # one step per window, straight down
    settled = limits[first:]
    assert set(settled) <= {3, 4, 5}
    assert settled.count(4) >= len(settled) // 2


async def test_a_curve_that_rises_to_the_maximum_keeps_it() -> None:
    """Rounds that mostly wait (a remote database): more at once is always better."""
    clock = Clock()
    limiter = PartitionLimiter(8, clock=clock)
    limits = [await _window(limiter, clock, lambda limit: 1_000.0 * limit) for _ in range(40)]
    assert limits[-20:].count(8) >= 10
    assert min(limits[-20:]) >= 7


async def test_a_flat_curve_leaves_the_limit_where_it_is() -> None:
    clock = Clock()
    limiter = PartitionLimiter(8, clock=clock)
    limits = [await _window(limiter, clock, lambda limit: 5_000.0) for _ in range(40)]
    assert set(limits) <= {7, 8}


async def test_without_contention_or_adaptation_the_limit_does_not_move() -> None:
    clock = Clock()
    idle = PartitionLimiter(8, clock=clock)
    for _ in range(10):
        async with idle:  # one round at a time: nobody waits, slots are left free
            clock.now += idle.window_s
            idle.done(100 if clock.now < 5 else 10)
    assert idle.limit == 8
    fixed = PartitionLimiter(8, adaptive=False, clock=clock)
    limits = [
        await _window(fixed, clock, lambda limit: 10_000 * 0.5 ** abs(limit - 3)) for _ in range(10)
    ]
    assert set(limits) == {8}


async def test_the_limit_never_leaves_its_bounds() -> None:
    clock = Clock()
    limiter = PartitionLimiter(6, clock=clock)
    limits = [await _window(limiter, clock, lambda limit: 10_000.0 / limit) for _ in range(40)]
    assert min(limits) == DEFAULT_MIN_LIMIT and max(limits) <= 6


async def test_holding_every_slot_keeps_every_round_out_until_released() -> None:
    limiter = PartitionLimiter(3, adaptive=False)
    entered = asyncio.Event()

    async def round_() -> None:
        async with limiter:
            entered.set()

    async with limiter.hold_all():
        task = asyncio.create_task(round_())
        await _settle()
        assert not entered.is_set() and limiter.in_use == 3
    await task
    assert entered.is_set() and limiter.in_use == 0
