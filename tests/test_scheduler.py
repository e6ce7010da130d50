"""The scheduler: steps exactly once and in order, effects leased and retried, timelines that move."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.clock import SYSTEM_CLOCK, Clock, ManualClock
from proxy.scheduler import Scheduler
from proxy.store.database import Database
from proxy.store.schedule import Due, Schedule


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    database.migrate("log", ["CREATE TABLE log (kind TEXT, n INTEGER, at REAL)"])
    yield database
    database.close()


def logged(db: Database) -> list[tuple[str, int]]:
    return [(row[0], row[1]) for row in db.conn.execute("SELECT kind, n FROM log ORDER BY rowid")]


def make(db: Database, clock: Clock) -> tuple[Schedule, Scheduler]:
    schedule = Schedule(db, clock)
    scheduler = Scheduler(schedule, clock, idle=0.05)

    def record(tx: sqlite3.Connection, item: Due) -> None:
        tx.execute("INSERT INTO log VALUES (?, ?, ?)", (item.kind, item.payload["n"], item.due))

    scheduler.step("tick", record)
    return schedule, scheduler


async def test_due_steps_run_once_in_due_order(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    now = clock.time()
    for n, delay in [(3, 3.0), (1, 1.0), (2, 2.0), (4, 10.0)]:
        schedule.add("tick", {"n": n}, due=now + delay)
    assert scheduler.run_due() == 0
    clock.advance(5)
    assert scheduler.run_due() == 3
    assert scheduler.run_due() == 0  # nothing twice
    assert logged(db) == [("tick", 1), ("tick", 2), ("tick", 3)]
    assert schedule.count() == 1


async def test_a_failing_step_stays_due_and_the_others_commit(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)

    def broken(tx: sqlite3.Connection, item: Due) -> None:
        tx.execute("INSERT INTO log VALUES ('broken', 0, 0)")
        raise RuntimeError("boom")

    scheduler.step("broken", broken)
    schedule.add("broken", {}, due=clock.time())
    schedule.add("tick", {"n": 1}, due=clock.time())
    scheduler.run_due()
    assert logged(db) == [("tick", 1)]  # the broken step's own write was rolled back
    assert schedule.count("broken") == 1


async def test_a_failing_step_is_retried_a_second_later_not_at_once(db: Database) -> None:
    """Still due at once, it would be picked again by the same ``advance`` pass and by the loop with no
    wait in between: either way the event loop would never get control back."""
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    schedule.ensure_timeline("ws")
    attempts: list[float] = []

    def broken(tx: sqlite3.Connection, item: Due) -> None:
        attempts.append(clock.time())
        raise RuntimeError("boom")

    scheduler.step("broken", broken)
    schedule.add("broken", {}, due=schedule.now("ws") + 1, timeline="ws")
    assert await asyncio.wait_for(scheduler.advance("ws", 5), 2) == 1  # returns, and ran it once
    assert scheduler.run_due() == 0
    clock.advance(1)
    assert scheduler.run_due() == 1
    assert len(attempts) == 2 and schedule.count("broken") == 1


async def test_advance_runs_chained_steps_inside_the_window_in_order(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    schedule.ensure_timeline("ws")

    def chain(tx: sqlite3.Connection, item: Due) -> None:  # each step schedules the next, 5 s later
        n = item.payload["n"]
        tx.execute("INSERT INTO log VALUES ('chain', ?, ?)", (n, item.due))
        if n < 4:
            schedule.add("chain", {"n": n + 1}, due=item.due + 5, timeline="ws")

    scheduler.step("chain", chain)
    start = schedule.now("ws")
    schedule.add("chain", {"n": 1}, due=start + 5, timeline="ws")
    assert await scheduler.advance("ws", 12) == 2  # steps at +5 and +10 happen, the one at +15 does not
    assert logged(db) == [("chain", 1), ("chain", 2)]
    assert [row[0] for row in db.conn.execute("SELECT at FROM log")] == [start + 5, start + 10]
    assert schedule.now("ws") == pytest.approx(start + 12)
    assert schedule.now() == clock.time()  # the gateway's clock did not move
    assert await scheduler.advance("ws", 100) == 2
    assert logged(db)[-2:] == [("chain", 3), ("chain", 4)]


async def test_a_frozen_timeline_moves_only_when_advanced(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    schedule.ensure_timeline("det", frozen_at=1_000_000.0)
    schedule.add("tick", {"n": 1}, due=1_000_010.0, timeline="det")
    clock.advance(3600)
    assert scheduler.run_due() == 0
    assert schedule.now("det") == 1_000_000.0
    assert await scheduler.advance("det", 10) == 1
    assert schedule.now("det") == 1_000_010.0


async def test_shifting_a_live_timeline_makes_its_items_due_for_the_loop_too(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    schedule.ensure_timeline("ws")
    schedule.add("tick", {"n": 1}, due=schedule.now("ws") + 30, timeline="ws")
    schedule.shift("ws", 30)
    assert scheduler.run_due() == 1


async def test_effects_are_leased_then_done_or_rescheduled_and_a_crash_repeats_them(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    calls: list[tuple[int, int]] = []
    answers = iter([RuntimeError("network"), 60.0, None])

    async def deliver(item: Due) -> float | None:
        calls.append((item.payload["n"], item.attempts))
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return clock.time() + answer if answer is not None else None

    scheduler.effect("deliver", deliver)
    schedule.add("deliver", {"n": 7}, due=clock.time())
    scheduler.run_due()
    await scheduler.settle()
    assert calls == [(7, 0)]
    assert scheduler.run_due() == 0  # leased: hidden while the lease lasts
    clock.advance(scheduler.lease + 1)  # the lease ends: handed out again
    scheduler.run_due()
    await scheduler.settle()
    assert calls[-1] == (7, 1)
    clock.advance(61)  # rescheduled 60 s ahead
    scheduler.run_due()
    await scheduler.settle()
    assert calls[-1] == (7, 2)
    assert schedule.count("deliver") == 0


async def test_leases_of_a_dead_process_are_due_again_at_start(db: Database) -> None:
    clock = ManualClock()
    schedule, _scheduler = make(db, clock)
    item = schedule.add("deliver", {"n": 1}, due=clock.time())
    schedule.lease(item, clock.time() + 3600)  # a process leased it, then died
    restarted = Scheduler(Schedule(db, clock), clock)
    seen: list[int] = []

    async def deliver(due: Due) -> float | None:
        seen.append(due.attempts)
        return None

    restarted.effect("deliver", deliver)
    await restarted.start()
    try:
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
    finally:
        await restarted.close()
    assert seen == [1]


async def test_the_loop_wakes_when_the_clock_jumps(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    scheduler.idle = 3600  # only a wake-up can make it look again
    await scheduler.start()
    try:
        schedule.add("tick", {"n": 1}, due=clock.time() + 30)
        await asyncio.sleep(0.05)
        assert logged(db) == []
        clock.advance(30)
        for _ in range(100):
            if logged(db):
                break
            await asyncio.sleep(0.01)
        assert logged(db) == [("tick", 1)]
    finally:
        await scheduler.close()


async def test_real_time_a_step_runs_when_due(db: Database) -> None:
    """The one real-timer test: the system clock, a step due in 0.3 s."""
    schedule, scheduler = make(db, SYSTEM_CLOCK)
    ran_at: list[float] = []
    scheduler.step("timed", lambda tx, item: ran_at.append(time.time()))
    due = time.time() + 0.3
    await scheduler.start()
    try:
        schedule.add("timed", {}, due=due)
        scheduler.wake()
        for _ in range(200):
            if ran_at:
                break
            await asyncio.sleep(0.01)
    finally:
        await scheduler.close()
    assert ran_at, "the step never ran"
    assert 0 <= ran_at[0] - due < 0.1


async def test_effects_beyond_the_cap_wait_unleased_and_steps_do_not_wait_behind_them(db: Database) -> None:
    """A backlog of effects larger than the cap is leased only as slots free, so no lease can expire
    while its item is still queued (which would hand the same item out twice)."""
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    scheduler.effect_concurrency = 2
    release = asyncio.Event()
    started: list[int] = []

    async def slow(item: Due) -> float | None:
        started.append(item.payload["n"])
        await release.wait()
        return None

    scheduler.effect("slow", slow)
    for n in range(5):
        schedule.add("slow", {"n": n}, due=clock.time())
    schedule.add("tick", {"n": 99}, due=clock.time() + 1)
    clock.advance(1)
    scheduler.run_due()
    await asyncio.sleep(0)
    assert started == [0, 1]
    assert logged(db) == [("tick", 99)]  # the step ran although effects were waiting ahead of it
    leased = db.conn.execute("SELECT COUNT(*) FROM schedule WHERE leased = 1").fetchone()[0]
    assert leased == 2  # the other three are not leased, so their leases cannot run out while they wait
    await scheduler.start()
    try:
        release.set()
        for _ in range(200):
            if schedule.count("slow") == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await scheduler.close()
    assert sorted(started) == [0, 1, 2, 3, 4]  # each exactly once


async def test_an_item_of_an_unknown_kind_is_kept_an_hour_ahead_and_blocks_nothing(db: Database) -> None:
    clock = ManualClock()
    schedule, scheduler = make(db, clock)
    schedule.add("from_a_newer_gateway", {}, due=clock.time())
    schedule.add("tick", {"n": 1}, due=clock.time())
    assert scheduler.run_due() == 2
    assert logged(db) == [("tick", 1)]
    [kept] = db.conn.execute("SELECT due FROM schedule WHERE kind = 'from_a_newer_gateway'").fetchall()
    assert kept[0] == clock.time() + 3600
    assert scheduler.run_due() == 0
