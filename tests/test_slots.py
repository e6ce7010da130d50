"""proxy/slots.py: free slots are taken at once, a full pool waits at most its timeout, freed slots go to
the longest waiter, and a waiter cancelled as its slot arrives passes the slot on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxy.deadline import Deadlines
from proxy.slots import ConnectionSlots, PoolExhausted


@pytest.fixture
async def deadlines() -> AsyncIterator[Deadlines]:
    owner = Deadlines(tick=0.01)
    owner.start()
    yield owner
    await owner.stop()


async def test_free_slots_are_taken_without_waiting(deadlines: Deadlines) -> None:
    slots = ConnectionSlots(2, 0.1, deadlines)
    assert slots.take() and slots.take()
    assert not slots.take()
    slots.release()
    assert slots.take()
    assert slots.busy == 2


async def test_a_full_pool_waits_its_timeout_then_is_exhausted(deadlines: Deadlines) -> None:
    slots = ConnectionSlots(1, 0.1, deadlines)
    assert slots.take()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(PoolExhausted):
        await slots.wait()
    assert 0.1 <= loop.time() - started < 0.1 + 0.05
    assert (slots.busy, len(slots.waiters)) == (1, 0)


async def test_a_freed_slot_goes_to_the_longest_waiter(deadlines: Deadlines) -> None:
    slots = ConnectionSlots(1, 5, deadlines)
    assert slots.take()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await slots.wait()
        order.append(name)

    first = asyncio.create_task(waiter("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(0)
    assert not slots.take()  # a newcomer does not jump the queue
    slots.release()
    await first
    assert order == ["first"] and slots.busy == 1
    slots.release()
    await second
    assert order == ["first", "second"] and slots.busy == 1
    slots.release()
    assert slots.busy == 0


async def test_a_waiter_cancelled_as_its_slot_arrives_passes_it_on(deadlines: Deadlines) -> None:
    slots = ConnectionSlots(1, 5, deadlines)
    assert slots.take()
    cancelled = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    later = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.release()  # handed to the first waiter ...
    cancelled.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await later
    assert (slots.busy, len(slots.waiters)) == (1, 0)
