"""What every sandbox operation works with: the store's pieces, one request's inputs, its answer, events
into the outbox, and cursor pagination.

Operations run on the event loop's thread (point reads and small WAL commits cost tens of
microseconds: proxy/store/database.py) and write in one transaction each, so an object, its history,
its events and its next scheduled step commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from proxy.clock import Clock
from proxy.sandbox import shapes
from proxy.sandbox.workspaces import Workspace, Workspaces, decode_cursor, encode_cursor
from proxy.scheduler import Scheduler
from proxy.store.database import Database
from proxy.store.outbox import Event, Outbox
from proxy.store.schedule import Schedule

Answer = tuple[int, Any]  # (HTTP status, the object to send as JSON)


@dataclass(frozen=True, slots=True)
class Call:
    """One sandbox request's inputs: the JSON body (``{}`` without one), path parameters, query."""

    body: dict[str, Any] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parts:
    db: Database
    workspaces: Workspaces
    outbox: Outbox
    schedule: Schedule
    scheduler: Scheduler
    clock: Clock

    def writing(self) -> AbstractContextManager[sqlite3.Connection]:
        """The transaction an operation writes in: its own, or, inside a group commit's savepoint
        (proxy/store/group_commit.py), that one (a savepoint in a savepoint would buy nothing)."""
        return nullcontext(self.db.conn) if self.db.in_transaction else self.db.transaction()

    def emit(self, tx: sqlite3.Connection, ws: Workspace, occasion: str, subject: str, at: float, data: Any) -> None:
        """Append the event live traffic would carry for ``occasion`` (``sent``, ``contact_created``…),
        with ``"test": true``, in ``tx``; nothing when the policy names no event for it."""
        event_type = ws.spec.events.get(occasion)
        if event_type is None:
            return
        event_id = self.workspaces.new_id(tx, ws, "event")
        payload = shapes.event_payload(ws.spec, event_id, event_type, at, data)
        self.outbox.append(Event(event_id, ws.id, event_type, subject, at, payload))

    def due_in(self, seconds: float) -> None:
        """A step was just scheduled ``seconds`` from now: wake the scheduler if that is before its loop
        looks again by itself (at least every ``idle`` seconds; a later step needs no wake-up)."""
        if seconds < self.scheduler.idle:
            self.scheduler.wake()


def fetch(conn: sqlite3.Connection, table: str, ws: Workspace, object_id: str) -> sqlite3.Row | None:
    """One object of ``ws`` by id (``table`` is one of the sandbox's own, never user input)."""
    row: sqlite3.Row | None = conn.execute(f"SELECT * FROM {table} WHERE workspace = ? AND id = ?",
                                           (ws.id, object_id)).fetchone()
    return row


def stored(conn: sqlite3.Connection, table: str, ws: Workspace, object_id: str) -> sqlite3.Row:
    """An object just written in this transaction (it is there)."""
    row = fetch(conn, table, ws, object_id)
    assert row is not None
    return row


def page(
    parts: Parts, ws: Workspace, table: str, call: Call, render: Callable[[sqlite3.Row], Any],
    filters: tuple[str, ...] = (),
) -> Answer:
    """One page of ``table``'s rows in ``ws``, newest first, after the object named by ``cursor``; each
    query parameter named in ``filters`` that is given keeps the rows whose column of that name equals it."""
    spec = ws.spec
    given = [(name, call.query[name]) for name in filters if name in call.query]
    where = "".join(f" AND {name} = ?" for name, _ in given)  # names from the code, never the query
    params = tuple(value for _, value in given)
    limit_text = call.query.get("limit")
    limit = spec.default_limit
    if limit_text is not None:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= spec.max_limit:
            raise spec.error("bad_query", message=f"limit must be a whole number from 1 to {spec.max_limit}.")
        limit = int(limit_text)
    sql = f"SELECT * FROM {table} WHERE workspace = ?{where}"
    args: list[Any] = [ws.id, *params]
    if (cursor := call.query.get("cursor")) is not None:
        after = decode_cursor(cursor)
        row = None if after is None else parts.db.conn.execute(
            f"SELECT seq FROM {table} WHERE workspace = ? AND id = ?", (ws.id, after)).fetchone()
        if row is None:
            raise spec.error("bad_query", message="cursor is not one this workspace gave out.")
        sql += " AND seq < ?"
        args.append(row["seq"])
    rows = parts.db.conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["id"]) if more else None
    return spec.statuses["ok"], shapes.page(spec, [render(row) for row in rows], next_cursor)
