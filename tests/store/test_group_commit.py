"""Group commit: the writes of one event-loop turn share one transaction, each in its own savepoint,
and no request hears back before its write is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.store.database import Database
from proxy.store.group_commit import GroupCommit


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    database.migrate("t", ["CREATE TABLE t (n INTEGER PRIMARY KEY)"])
    yield database
    database.close()


def committed(db: Database) -> list[int]:
    """What another connection sees: only committed rows."""
    other = sqlite3.connect(db.path)
    try:
        return [row[0] for row in other.execute("SELECT n FROM t ORDER BY n")]
    finally:
        other.close()


def insert(db: Database, n: int) -> int:
    with db.transaction() as tx:
        tx.execute("INSERT INTO t (n) VALUES (?)", (n,))
    return n


async def test_writes_of_one_turn_commit_together_and_are_committed_when_answered(db: Database) -> None:
    group = GroupCommit(db)

    async def write(n: int) -> list[int]:
        await group.run(lambda: insert(db, n))
        return committed(db)

    seen = await asyncio.gather(*(write(n) for n in range(20)))
    assert group.groups == 1 and group.writes == 20
    assert all(view == list(range(20)) for view in seen)  # every writer saw all of them committed


async def test_a_failing_write_rolls_back_alone_and_gets_its_exception(db: Database) -> None:
    group = GroupCommit(db)

    def broken() -> None:
        insert(db, 99)
        raise ValueError("no")

    results = await asyncio.gather(group.run(lambda: insert(db, 1)), group.run(broken),
                                   group.run(lambda: insert(db, 1)), group.run(lambda: insert(db, 2)),
                                   return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], ValueError)
    assert isinstance(results[2], sqlite3.IntegrityError) and results[3] == 2
    assert committed(db) == [1, 2] and group.groups == 1


async def test_a_long_queue_commits_in_bounded_groups(db: Database) -> None:
    group = GroupCommit(db, max_group=8)
    await asyncio.gather(*(group.run(lambda n=n: insert(db, n)) for n in range(20)))  # type: ignore[misc]
    assert group.groups == 3 and committed(db) == list(range(20))


async def test_a_write_whose_request_went_away_still_commits(db: Database) -> None:
    group = GroupCommit(db)
    waiter = asyncio.ensure_future(group.run(lambda: insert(db, 7)))
    await asyncio.sleep(0)
    waiter.cancel()
    await group.run(lambda: insert(db, 8))
    assert committed(db) == [7, 8]
