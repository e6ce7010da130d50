"""Deadlines without a timer per request: the asyncio.timeout contract, at most one tick late."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from proxy.deadline import Deadlines

TICK = 0.02


@pytest.fixture
async def deadlines() -> AsyncIterator[Deadlines]:
    running = Deadlines(tick=TICK)
    running.start()
    yield running
    await running.stop()


def _in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_a_block_that_ends_in_time_is_untouched(deadlines: Deadlines) -> None:
    async with deadlines.at(_in(1)):
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # a stale tick must not cancel anything afterwards


async def test_an_overdue_block_raises_timeout_error_at_most_one_tick_late(deadlines: Deadlines) -> None:
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with deadlines.at(_in(0.1)):
            await asyncio.sleep(5)
    elapsed = time.perf_counter() - started
    assert 0.1 <= elapsed < 0.1 + TICK + 0.1, elapsed  # one tick, plus scheduling slack
    await asyncio.sleep(0)  # the task is usable afterwards: no cancellation left pending


async def test_another_cancellation_passes_through_as_cancellation(deadlines: Deadlines) -> None:
    async def guarded() -> None:
        async with deadlines.at(_in(10)):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(guarded())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_blocks_expire_independently(deadlines: Deadlines) -> None:
    async def wait(limit: float, work: float) -> str:
        try:
            async with deadlines.at(_in(limit)):
                await asyncio.sleep(work)
        except TimeoutError:
            return "timeout"
        return "done"

    results = await asyncio.gather(*(wait(0.05, 0.2) if i % 2 else wait(0.5, 0.01) for i in range(20)))
    assert results == ["done", "timeout"] * 10


async def test_a_deadline_needs_the_ticker() -> None:
    with pytest.raises(RuntimeError):
        Deadlines().at(0.0)
