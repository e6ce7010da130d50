"""Group commit: the writes requests submit during one turn of the event loop commit together.

A WAL commit costs far more than the statements in it (each commit appends every page it dirtied to
the WAL: ~40-70 µs for a sandbox send's three inserts, against ~10 µs for the inserts themselves), and
a request answered before its commit could report a write that a ``kill -9`` then loses. So a request
hands its write to :meth:`GroupCommit.run` and waits: the first submission of a turn schedules one
callback (``loop.call_soon``) that runs every submitted write in one transaction, each in a savepoint
of its own (a write that raises rolls back alone and its request gets the exception), commits once,
then wakes the requests. Nothing is acknowledged before it is committed, and under load dozens of
requests share one commit.

The writes run synchronously inside the callback, so no other task's transaction can interleave with
the group's (a transaction held open across an ``await`` would silently swallow other components'
commits into this one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from proxy.store.database import Database

log = structlog.get_logger("proxy.store")
T = TypeVar("T")


class GroupCommit:
    def __init__(self, db: Database, max_group: int = 256) -> None:
        self.db = db
        self.max_group = max_group  # writes per transaction; a longer queue commits in several
        self._queue: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self.groups = 0  # transactions committed (for tests and the record)
        self.writes = 0

    async def run(self, write: Callable[[], T]) -> T:
        """Run ``write()`` (synchronous, database work only) in the next group transaction; its result,
        or its exception, once the group has committed (or failed to)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((write, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit)
        return await future

    def _commit(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), self.max_group):
            self._commit_group(queue[start:start + self.max_group])

    def _commit_group(self, group: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with self.db.transaction():
                for write, future in group:
                    try:
                        with self.db.transaction():  # a savepoint: this write, or none of it
                            outcomes.append((future, write(), None))
                    except Exception as exc:
                        outcomes.append((future, None, exc))
        except Exception as exc:  # the commit itself failed: none of the group's writes is stored
            log.exception("group_commit_failed", writes=len(group))
            outcomes = [(future, None, exc) for _, future in group]
        else:
            self.groups += 1
            self.writes += len(group)
        for future, value, error in outcomes:
            if future.done():  # its request went away meanwhile; its write stands (or fell) all the same
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
