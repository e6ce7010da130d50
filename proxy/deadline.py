"""Deadlines for the forwarding hot path without an event-loop timer per request.

``asyncio.timeout()`` arms and cancels a loop timer each time it is used: ~10 µs under uvloop, the
costliest single line of a forwarded request. Here a deadline is a dict entry; one ticker task wakes
every ``tick`` seconds while any deadline is pending and cancels the tasks whose time has come, so
a deadline fires at most ``tick`` late. Inside, :meth:`Deadlines.at` behaves like
``asyncio.timeout_at``: the block's task is cancelled, and leaving the block turns that
cancellation into :class:`TimeoutError` (other cancellations pass through untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class Deadlines:
    """Deadlines on one event loop. :meth:`start` and :meth:`stop` run in the server's lifespan."""

    def __init__(self, tick: float = 0.05) -> None:
        self.tick = tick
        self._pending: dict[Deadline, float] = {}
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._ticker is None:
            self._wake = asyncio.Event()  # bound to the loop it is first awaited on: a fresh one per start
            self._ticker = asyncio.get_running_loop().create_task(self._run(), name="testmode-proxy-deadlines")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    def at(self, when: float) -> Deadline:
        """``async with deadlines.at(loop.time() + seconds):`` — like ``asyncio.timeout_at(when)``."""
        if self._ticker is None:
            raise RuntimeError("Deadlines.start() was not called")
        return Deadline(self, when)

    def _add(self, deadline: Deadline, when: float) -> None:
        if not self._pending:
            self._wake.set()
        self._pending[deadline] = when

    def _remove(self, deadline: Deadline) -> None:
        self._pending.pop(deadline, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self.tick)
            now = loop.time()
            expired = [deadline for deadline, when in self._pending.items() if when <= now]
            for deadline in expired:
                del self._pending[deadline]
                deadline.expire()


class Deadline:
    """One ``async with`` block under a deadline (``asyncio.Timeout``'s contract, a shared ticker)."""

    __slots__ = ("_cancelling", "_expired", "_owner", "_task", "_when")

    def __init__(self, owner: Deadlines, when: float) -> None:
        self._owner, self._when = owner, when
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        self._task, self._cancelling = task, task.cancelling()
        self._owner._add(self, self._when)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._owner._remove(self)
        if self._expired:
            assert self._task is not None
            # Ours was the only new cancellation: it ends here, as a timeout (asyncio.Timeout does the same).
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def expire(self) -> None:
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()
