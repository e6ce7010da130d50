"""Deadlines without a timer per request: the asyncio.timeout contract, at most one tick late."""

from __future__ import annotations

import asyncio
import time

import pytest

from proxy.deadline import Deadlines


async def test_a_block_that_ends_in_time_is_untouched() -> None:
    deadlines = Deadlines(tick=0.01)
    deadlines.start()
    try:
        loop = asyncio.get_running_loop()
        async with deadlines.at(loop.time() + 1):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # a stale tick must not cancel anything afterwards
    finally:
        await deadlines.stop()


async def test_an_overdue_block_raises_timeout_error_at_most_one_tick_late() -> None:
    deadlines = Deadlines(tick=0.02)
    deadlines.start()
    try:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            async with deadlines.at(loop.time() + 0.1):
                await asyncio.sleep(5)
        elapsed = time.perf_counter() - started
        assert 0.1 <= elapsed < 0.1 + 0.02 + 0.1, elapsed  # one tick, plus scheduling slack
        await asyncio.sleep(0)  # the task is usable afterwards: no cancellation left pending
    finally:
        await deadlines.stop()


async def test_another_cancellation_passes_through_as_cancellation() -> None:
    deadlines = Deadlines(tick=0.01)
    deadlines.start()
    try:
        loop = asyncio.get_running_loop()

        async def guarded() -> None:
            async with deadlines.at(loop.time() + 10):
                await asyncio.sleep(5)

        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await deadlines.stop()


async def test_many_blocks_expire_independently() -> None:
    deadlines = Deadlines(tick=0.01)
    deadlines.start()
    try:
        loop = asyncio.get_running_loop()

        async def wait(limit: float, work: float) -> str:
            try:
                async with deadlines.at(loop.time() + limit):
                    await asyncio.sleep(work)
            except TimeoutError:
                return "timeout"
            return "done"

        results = await asyncio.gather(*(wait(0.05, 0.2) if i % 2 else wait(0.5, 0.01) for i in range(20)))
        assert results == ["done", "timeout"] * 10
    finally:
        await deadlines.stop()


async def test_a_deadline_needs_the_ticker() -> None:
    with pytest.raises(RuntimeError):
        Deadlines().at(0.0)
