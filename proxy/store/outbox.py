"""The outbox: events a workspace produced, durable, waiting for delivery.

A sandbox lifecycle step appends its event (``message.sent``…) in the same transaction that changes
the message, so an event exists exactly when its transition does. Listeners subscribed with
:meth:`Outbox.subscribe` run inside that transaction too: webhook delivery fans each event out to
the workspace's subscriptions there, so no event is ever appended without its deliveries scheduled.

``payload`` is the event body exactly as it is delivered (bytes): every attempt, and every replay,
sends the same bytes under the same event id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from proxy.store.database import Database

MIGRATIONS = [
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        workspace TEXT NOT NULL,
        type TEXT NOT NULL,
        subject TEXT,
        occurred_at REAL NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE INDEX outbox_by_workspace ON outbox (workspace, seq)
    """,
]


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # stable across attempts and replays (``evt_…``)
    workspace: str
    type: str  # ``message.sent``
    subject: str | None  # what the event is about (a message id): deliveries keep order per subject
    occurred_at: float  # on the workspace's timeline
    payload: bytes  # the JSON body as delivered
    seq: int = 0  # the outbox's own order, set on append


Listener = Callable[[sqlite3.Connection, Event], None]


def _event(row: sqlite3.Row) -> Event:
    return Event(row["id"], row["workspace"], row["type"], row["subject"], row["occurred_at"], bytes(row["payload"]),
                 row["seq"])


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("outbox", MIGRATIONS)
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Run ``listener(tx, event)`` inside the transaction of every append."""
        self._listeners.append(listener)

    def append(self, event: Event) -> Event:
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "INSERT INTO outbox (id, workspace, type, subject, occurred_at, payload) VALUES (?, ?, ?, ?, ?, ?)",
                (event.id, event.workspace, event.type, event.subject, event.occurred_at, event.payload),
            )
            assert cursor.lastrowid is not None
            stored = Event(event.id, event.workspace, event.type, event.subject, event.occurred_at, event.payload,
                           cursor.lastrowid)
            for listener in self._listeners:
                listener(tx, stored)
        return stored

    def get(self, event_id: str) -> Event | None:
        row = self.db.conn.execute("SELECT * FROM outbox WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else _event(row)

    def list(self, workspace: str, *, after: int = 0, limit: int = 100, type: str | None = None) -> list[Event]:
        """A workspace's events in the order they happened, after outbox position ``after``."""
        if type is None:
            rows = self.db.conn.execute(
                "SELECT * FROM outbox WHERE workspace = ? AND seq > ? ORDER BY seq LIMIT ?", (workspace, after, limit)
            ).fetchall()
        else:
            rows = self.db.conn.execute(
                "SELECT * FROM outbox WHERE workspace = ? AND seq > ? AND type = ? ORDER BY seq LIMIT ?",
                (workspace, after, type, limit),
            ).fetchall()
        return [_event(row) for row in rows]

    def count(self, workspace: str | None = None) -> int:
        if workspace is None:
            return int(self.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        return int(self.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE workspace = ?", (workspace,)).fetchone()[0])

    def drop_workspace(self, workspace: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM outbox WHERE workspace = ?", (workspace,))
