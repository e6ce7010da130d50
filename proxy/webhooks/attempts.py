"""Deliveries and the attempt log: what was sent where, when, with which answer; what can be replayed.

A *delivery* is one event for one subscription: ``waiting`` (behind an earlier event for the same
message: deliveries keep order per subject), ``pending`` (scheduled), ``delivered`` or ``failed``
(attempts used up, a 410, or the subscription disabled). ``trigger`` says why it exists: ``event``
(the outbox fan-out) or ``replay`` (asked for through the API). An *attempt* is one POST: its time on
the workspace's clock, URL, the address connected to, status, latency, error, the signature header
and the first KiB of the answer. Drills add attempts of their own, marked with ``drill``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from proxy.clock import iso_ms
from proxy.store.database import Database

MIGRATIONS = [
    """
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        subscription TEXT NOT NULL,
        event TEXT NOT NULL,
        event_seq INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        subject TEXT,
        trigger TEXT NOT NULL,
        drills TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        finished_at REAL,
        last_error TEXT
    );
    CREATE INDEX webhook_deliveries_by_subject ON webhook_deliveries (subscription, subject, state, event_seq);
    CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event, subscription);
    CREATE INDEX webhook_deliveries_by_state ON webhook_deliveries (workspace, state, created_at);
    CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        subscription TEXT NOT NULL,
        delivery INTEGER NOT NULL,
        event TEXT NOT NULL,
        event_type TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        drill TEXT,
        at REAL NOT NULL,
        url TEXT NOT NULL,
        address TEXT,
        status INTEGER,
        latency_ms REAL NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        signature TEXT,
        response TEXT
    );
    CREATE INDEX webhook_attempts_by_workspace ON webhook_attempts (workspace, id);
    CREATE INDEX webhook_attempts_by_event ON webhook_attempts (event, id)
    """,
]

OPEN = ("waiting", "pending")


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    workspace: str
    subscription: str
    event: str
    event_seq: int
    event_type: str
    subject: str | None
    trigger: str  # event | replay
    drills: frozenset[str]
    state: str  # waiting | pending | delivered | failed
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    workspace: str
    subscription: str
    delivery: int
    event: str
    event_type: str
    attempt: int  # the delivery's n-th attempt (drill attempts carry the number of the one they go with)
    trigger: str
    drill: str | None
    at: float  # on the workspace's clock
    url: str
    address: str | None
    status: int | None
    latency_ms: float
    outcome: str  # delivered | failed
    error: str | None
    signature: str | None
    response: str | None
    id: int = 0

    def public(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["id"] = f"att_{self.id}"
        doc["at"] = iso_ms(self.at)
        doc["delivery"] = f"dlv_{self.delivery}"
        doc["object"] = "webhook_attempt"
        return doc


def _delivery(row: sqlite3.Row) -> Delivery:
    drills = frozenset(filter(None, row["drills"].split(",")))
    return Delivery(row["id"], row["workspace"], row["subscription"], row["event"], row["event_seq"],
                    row["event_type"], row["subject"], row["trigger"], drills, row["state"], row["attempts"],
                    row["created_at"])


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(**{name: row[name] for name in Attempt.__dataclass_fields__})


class DeliveryLog:
    """Deliveries and attempts. Every method runs in the caller's transaction when there is one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("webhook_deliveries", MIGRATIONS)

    # -------------------------------------------------------------------------------- deliveries

    def add(self, *, workspace: str, subscription: str, event: str, event_seq: int, event_type: str,
            subject: str | None, trigger: str, drills: frozenset[str], state: str, now: float) -> int:
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "INSERT INTO webhook_deliveries (workspace, subscription, event, event_seq, event_type, subject, "
                "trigger, drills, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workspace, subscription, event, event_seq, event_type, subject, trigger, ",".join(sorted(drills)),
                 state, now),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def get(self, delivery_id: int) -> Delivery | None:
        row = self.db.conn.execute("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else _delivery(row)

    def in_line(self, subscription: str, subject: str) -> bool:
        """Whether an event for ``subject`` is still open for ``subscription`` (a new one waits behind it)."""
        row = self.db.conn.execute(
            "SELECT 1 FROM webhook_deliveries WHERE subscription = ? AND subject = ? AND state IN ('waiting', "
            "'pending') AND trigger = 'event' AND instr(drills, 'out_of_order') = 0 LIMIT 1", (subscription, subject),
        ).fetchone()
        return row is not None

    def next_waiting(self, subscription: str, subject: str) -> Delivery | None:
        row = self.db.conn.execute(
            "SELECT * FROM webhook_deliveries WHERE subscription = ? AND subject = ? AND state = 'waiting' "
            "ORDER BY event_seq LIMIT 1", (subscription, subject),
        ).fetchone()
        return None if row is None else _delivery(row)

    def set_state(self, delivery_id: int, state: str, *, now: float | None = None, attempts: int | None = None,
                  error: str | None = None) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE webhook_deliveries SET state = ?, attempts = COALESCE(?, attempts), "
                "finished_at = CASE WHEN ? IN ('delivered', 'failed') THEN ? ELSE finished_at END, "
                "last_error = COALESCE(?, last_error) WHERE id = ?",
                (state, attempts, state, now, error, delivery_id),
            )

    def fail_open(self, subscription: str, reason: str, now: float) -> int:
        """Every open delivery of ``subscription`` fails (it was disabled); their items find them finished."""
        return self._fail_open("subscription", subscription, reason, now)

    def fail_workspace(self, workspace: str, reason: str, now: float) -> int:
        """Every open delivery of ``workspace`` fails (the workspace was reset: its events are gone)."""
        return self._fail_open("workspace", workspace, reason, now)

    def _fail_open(self, column: str, value: str, reason: str, now: float) -> int:
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE webhook_deliveries SET state = 'failed', finished_at = ?, last_error = ? "
                f"WHERE {column} = ? AND state IN ('waiting', 'pending')", (now, reason, value),
            )
        return cursor.rowcount

    def failed_since(self, workspace: str, since: float, subscription: str | None = None) -> list[tuple[str, str]]:
        """(event, subscription) pairs whose deliveries since ``since`` all failed, in event order: what a
        replay of failed events sends again (an event delivered since, by a replay, is not sent twice)."""
        rows = self.db.conn.execute(
            "SELECT event, subscription, MIN(event_seq) AS seq FROM webhook_deliveries d "
            "WHERE workspace = ? AND state = 'failed' AND created_at >= ? AND (? IS NULL OR subscription = ?) "
            "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries r WHERE r.event = d.event "
            "AND r.subscription = d.subscription AND r.state != 'failed') "
            "GROUP BY event, subscription ORDER BY seq", (workspace, since, subscription, subscription),
        ).fetchall()
        return [(row["event"], row["subscription"]) for row in rows]

    def open_count(self) -> int:
        """Deliveries not finished: the queue depth."""
        row = self.db.conn.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE state IN ('waiting', 'pending')")
        return int(row.fetchone()[0])

    # ---------------------------------------------------------------------------------- attempts

    def record(self, attempt: Attempt) -> int:
        names = [n for n in Attempt.__dataclass_fields__ if n != "id"]
        with self.db.transaction() as tx:
            cursor = tx.execute(
                f"INSERT INTO webhook_attempts ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                tuple(getattr(attempt, n) for n in names),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def attempts(self, workspace: str, *, event: str | None = None, subscription: str | None = None,
                 outcome: str | None = None, before: int | None = None, limit: int = 100) -> list[Attempt]:
        """A workspace's attempts, newest first, optionally of one event, subscription or outcome."""
        where: list[str] = ["workspace = ?"]
        args: list[Any] = [workspace]
        for column, value in (("event", event), ("subscription", subscription), ("outcome", outcome)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        rows = self.db.conn.execute(
            f"SELECT * FROM webhook_attempts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*args, limit),
        ).fetchall()
        return [_attempt(row) for row in rows]
