"""Connection slots to one provider: the upstream pool's wait, bounded (reliability.md: 1 s, then 503).

aiohttp's connector has its own pool limit, but its wait shares one timeout with the TCP connect
(``ClientTimeout.connect``) and fails as a connect timeout: a 502 blaming the provider, after 5 s. A
full pool is the gateway's own overload, so :mod:`proxy.forward` takes a slot here first (the same
number as the connector's limit, so the connector itself never has to wait): free slots cost an
integer compare, and only a request that finds none waits, at most ``timeout`` seconds, on a
:class:`proxy.deadline.Deadlines` deadline (no loop timer). A freed slot goes to the longest waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from proxy.deadline import Deadlines


class PoolExhausted(Exception):
    """No slot came free within the wait."""


class ConnectionSlots:
    __slots__ = ("busy", "deadlines", "size", "timeout", "waiters")

    def __init__(self, size: int, timeout: float, deadlines: Deadlines) -> None:
        self.size, self.timeout, self.deadlines = size, timeout, deadlines
        self.busy = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a free slot at once (the hot path: no coroutine), or say there is none."""
        if self.busy < self.size and not self.waiters:
            self.busy += 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot (after :meth:`take` found none); raise :class:`PoolExhausted` after ``timeout``."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self.waiters.append(waiter)
        try:
            async with self.deadlines.at(loop.time() + self.timeout):
                await waiter  # release() hands its slot over: busy stays as it is
        except TimeoutError:
            if not _handed_over(waiter):
                raise PoolExhausted from None
        except BaseException:
            if _handed_over(waiter):
                self.release()  # the slot arrived as we were cancelled: pass it on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1


def _handed_over(waiter: asyncio.Future[None]) -> bool:
    return waiter.done() and not waiter.cancelled()
