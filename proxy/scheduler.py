"""Due-time work, run by one loop: lifecycle steps, webhook attempts, purges.

Handlers are registered by kind (:class:`proxy.store.schedule.Schedule` holds the items):

* a **step** (``step(kind, fn)``) changes only the database: ``fn(tx, item)`` runs inside the
  transaction that deletes the item, so a crash before the commit leaves it due and a crash after it
  leaves nothing to repeat — exactly once. Due steps are run in batches, one transaction per batch, one
  savepoint per item (a failing item is logged, rolled back and left due; the others commit).
* an **effect** (``effect(kind, fn)``) calls the outside world: the item is leased first (its own
  commit), then ``await fn(item)`` runs and returns the next due time on the item's timeline
  (rescheduled) or ``None`` (done). A crash or an exception while leased repeats the call later — at
  least once, so effects carry a stable id (a webhook's event id). At most ``effect_concurrency``
  effects are leased at once: a due effect waits *unleased* for a free slot, so a backlog never
  outlives its leases (which would hand the same item out twice), and steps never queue behind it.

The loop sleeps until the earliest ``due_real`` (at most ``idle`` seconds, so items added by another
process are seen), and wakes early when an item is added sooner or the clock jumps. ``advance``
moves one timeline and runs every step falling due inside the window, in order, before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable

import structlog

from proxy.clock import Clock
from proxy.store.schedule import Due, Schedule

log = structlog.get_logger("proxy.scheduler")

Step = Callable[[sqlite3.Connection, Due], None]
Effect = Callable[[Due], Awaitable[float | None]]


class Scheduler:
    def __init__(
        self,
        schedule: Schedule,
        clock: Clock,
        *,
        batch: int = 256,
        effect_concurrency: int = 64,
        lease: float = 60.0,
        idle: float = 1.0,
    ) -> None:
        self.schedule = schedule
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.idle = idle
        self._steps: dict[str, Step] = {}
        self._effects: dict[str, Effect] = {}
        self.effect_concurrency = effect_concurrency
        self._saturated = False  # due effects were left waiting for a slot: look again when one frees
        self._running: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.lateness: Callable[[str, float], None] | None = None  # (kind, seconds late) per step run
        clock.on_jump(self.wake)

    def step(self, kind: str, handler: Step) -> None:
        self._steps[kind] = handler

    def effect(self, kind: str, handler: Effect) -> None:
        self._effects[kind] = handler

    def wake(self) -> None:
        """Look for due work now (an item was added, a timeline or the clock moved)."""
        self._wakeup.set()

    # --------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        released = self.schedule.release_leases(self.clock.time())
        if released:
            log.info("scheduler_leases_released", items=released)
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def close(self, drain: float = 20.0) -> None:
        """Stop handing out work; let effects in flight finish within ``drain`` seconds. Idempotent: a
        second call (the lifespan's, after a drain began at SIGTERM) waits for the first."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(drain))
        await asyncio.shield(self._closing)

    async def _close(self, drain: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=drain)
            for task in pending:  # still leased in the store: handed out again at next start
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)

    # ------------------------------------------------------------------------------------ running

    async def _loop(self) -> None:
        while True:
            try:
                handed = self.run_due()
            except Exception:  # a broken database must not kill the loop silently: log, back off
                log.exception("scheduler_pass_failed")
                handed = 0
                await asyncio.sleep(self.idle)
            if handed >= self.batch:
                await asyncio.sleep(0)  # more is due: let requests in, then go on
                continue
            self._wakeup.clear()
            if self._saturated:  # effects wait for a slot (a finishing effect wakes the loop); steps do not
                next_due = self.schedule.next_due_real(tuple(self._steps)) if self._steps else None
            else:
                next_due = self.schedule.next_due_real()
            delay = self.idle if next_due is None else min(self.idle, max(0.0, next_due - self.clock.time()))
            if delay > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives as the
                # event is set (gh-86296), and close() would then wait for this loop forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()

    def run_due(self) -> int:
        """One pass over what is due on the gateway's clock; how many items were handled or handed out.

        Steps first (all that are due, a batch at a time); then effects, only as many as there are free
        slots, so a backlog of effects is neither leased early nor read over and over."""
        now = self.clock.time()
        steps = self.schedule.due_now(now, self.batch, tuple(self._steps)) if self._steps else []
        self._run_steps(steps, now)
        free = self.effect_concurrency - len(self._running)
        effects = self.schedule.due_now(now, free, tuple(self._effects)) if free > 0 and self._effects else []
        # Every free slot taken: more effects may be due; a finishing one wakes the loop to look again.
        self._saturated = free <= 0 or len(effects) == free
        with self.schedule.db.transaction():  # the pass's leases in one commit (effects start after it)
            for item in effects:
                self._start_effect(item, now)
            unknown = self.schedule.due_now(now, self.batch, tuple(self._steps) + tuple(self._effects), exclude=True)
            for item in unknown:
                log.error("scheduler_unknown_kind", kind=item.kind, item=item.id)
                self.schedule.reschedule(item.id, item.due + 3600)  # kept: a newer gateway may know it
        return len(steps) + len(effects) + len(unknown)

    def _run_steps(self, steps: list[Due], now: float | None = None) -> None:
        if not steps:
            return
        db = self.schedule.db
        failed: list[Due] = []
        with db.transaction() as tx:
            for item in steps:
                try:
                    with db.transaction():
                        self._steps[item.kind](tx, item)
                        tx.execute("DELETE FROM schedule WHERE id = ?", (item.id,))
                except Exception:
                    log.exception("scheduler_step_failed", kind=item.kind, item=item.id)
                    failed.append(item)
                    continue
                if self.lateness is not None and now is not None:
                    self.lateness(item.kind, max(0.0, self.schedule.now(item.timeline) - item.due))
        # A failed step is retried by the loop `idle` seconds later, never at once: still due, it would
        # be picked again by the same pass of `advance`, and by the loop with no wait in between (either
        # way the event loop would never get control back). Leased, it is out of both until then.
        for item in failed:
            self.schedule.lease(item.id, self.clock.time() + self.idle)

    def _start_effect(self, item: Due, now: float) -> None:
        self.schedule.lease(item.id, now + self.lease)
        task = asyncio.create_task(self._run_effect(item), name=f"effect-{item.kind}-{item.id}")
        self._running.add(task)
        task.add_done_callback(self._effect_finished)

    def _effect_finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._saturated:
            self.wake()  # a slot is free for an effect left waiting

    async def _run_effect(self, item: Due) -> None:
        started = time.perf_counter()
        try:
            next_due = await self._effects[item.kind](item)
        except Exception:
            log.exception("scheduler_effect_failed", kind=item.kind, item=item.id)
            return  # still leased: handed out again when the lease ends
        if next_due is None:
            self.schedule.done(item.id)
        else:
            self.schedule.reschedule(item.id, next_due)
            self.wake()
        log.debug("scheduler_effect_done", kind=item.kind, seconds=round(time.perf_counter() - started, 4))

    # ---------------------------------------------------------------------------------- timelines

    async def advance(self, timeline: str, seconds: float) -> int:
        """Move ``timeline`` ``seconds`` ahead and run every step due inside the window, in due order
        (steps may schedule further steps inside it: those run too). Effects that fall due are handed
        to the loop at once. Returns how many steps ran."""
        target = self.schedule.shift(timeline, seconds)
        ran = 0
        kinds = tuple(self._steps)
        while kinds:
            items = self.schedule.due_on(timeline, target, kinds, self.batch)
            if not items:
                break
            self._run_steps(items)
            ran += len(items)
            if len(items) >= self.batch:
                await asyncio.sleep(0)
        self.schedule.release_due_on(timeline, target, self.clock.time())
        self.wake()
        return ran

    async def settle(self, within: float = 10.0) -> None:
        """Wait until no effect is in flight (tests, and ``advance`` callers that want deliveries done)."""
        deadline = time.monotonic() + within
        while self._running and time.monotonic() < deadline:
            await asyncio.wait(set(self._running), timeout=max(0.0, deadline - time.monotonic()))
