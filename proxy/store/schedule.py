"""Due work on timelines: what must happen when, durable across restarts (SQLite).

A *timeline* is a clock a user can move: a sandbox workspace owns one, so advancing it by N seconds
makes every step and retry that falls due inside those N seconds happen now. A timeline follows the
gateway's clock plus an ``offset`` that only grows, or is *frozen* at ``frozen_at`` (deterministic
workspaces: time moves only when advanced). Work with no timeline follows the gateway's clock.

Each item carries ``due`` in its timeline's time and ``due_real`` on the gateway's clock (NULL while
its timeline is frozen): the background loop (:mod:`proxy.scheduler`) looks items up by ``due_real``
through one index; advancing a timeline shifts its items' ``due_real`` by the same amount.

An item is either a *step* (its effect is a change in this database, made in the same transaction
that deletes the item: exactly once) or an *effect* (an outside call, such as a webhook delivery: the
item is leased, pushed ``lease`` seconds ahead, while the call runs, and done or rescheduled after it;
a crash in between repeats the call: at least once).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.clock import Clock
from proxy.store.database import Database

MIGRATIONS = [
    """
    CREATE TABLE timelines (
        id TEXT PRIMARY KEY,
        offset REAL NOT NULL DEFAULT 0,
        frozen_at REAL
    );
    CREATE TABLE schedule (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        timeline TEXT REFERENCES timelines (id) ON DELETE CASCADE,
        due REAL NOT NULL,
        due_real REAL,
        leased INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        payload BLOB NOT NULL
    );
    CREATE INDEX schedule_by_due_real ON schedule (due_real) WHERE due_real IS NOT NULL;
    CREATE INDEX schedule_by_timeline ON schedule (timeline, due)
    """,
]


@dataclass(frozen=True, slots=True)
class Due:
    """One scheduled item, as handed to its handler."""

    id: int
    kind: str
    timeline: str | None
    due: float  # in the timeline's time
    attempts: int  # effects: how many times it was handed out before this one
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Timeline:
    id: str
    offset: float
    frozen_at: float | None


def _due(row: sqlite3.Row) -> Due:
    return Due(row["id"], row["kind"], row["timeline"], row["due"], row["attempts"], orjson.loads(row["payload"]))


class Schedule:
    """Timelines and the items due on them. Every method runs in the caller's transaction when there is
    one (``db.transaction()`` nests), so a domain change and the work it schedules commit together."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.migrate("schedule", MIGRATIONS)
        self._timelines: dict[str, Timeline] = {}

    # ----------------------------------------------------------------------------------- timelines

    def timeline(self, timeline_id: str) -> Timeline | None:
        cached = self._timelines.get(timeline_id)
        if cached is not None:
            return cached
        row = self.db.conn.execute("SELECT id, offset, frozen_at FROM timelines WHERE id = ?",
                                   (timeline_id,)).fetchone()
        if row is None:
            return None
        found = self._timelines[timeline_id] = Timeline(row["id"], row["offset"], row["frozen_at"])
        return found

    def ensure_timeline(self, timeline_id: str, *, frozen_at: float | None = None) -> Timeline:
        """The timeline, created if missing: following the gateway's clock, or frozen at ``frozen_at``."""
        found = self.timeline(timeline_id)
        if found is not None:
            return found
        with self.db.transaction() as tx:
            tx.execute("INSERT OR IGNORE INTO timelines (id, offset, frozen_at) VALUES (?, 0, ?)",
                       (timeline_id, frozen_at))
        self._timelines.pop(timeline_id, None)
        created = self.timeline(timeline_id)
        assert created is not None
        return created

    def drop_timeline(self, timeline_id: str) -> None:
        """Delete a timeline and everything scheduled on it."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM schedule WHERE timeline = ?", (timeline_id,))
            tx.execute("DELETE FROM timelines WHERE id = ?", (timeline_id,))
        self._timelines.pop(timeline_id, None)

    def now(self, timeline_id: str | None = None) -> float:
        """The time on ``timeline_id`` (the gateway's clock for ``None`` or an unknown timeline)."""
        real = self.clock.time()
        if timeline_id is None:
            return real
        found = self.timeline(timeline_id)
        if found is None:
            return real
        return found.frozen_at if found.frozen_at is not None else real + found.offset

    def shift(self, timeline_id: str, seconds: float) -> float:
        """Move ``timeline_id`` ``seconds`` ahead (its items' ``due_real`` with it); its new time."""
        if seconds < 0:
            raise ValueError("a timeline does not go back")
        found = self.ensure_timeline(timeline_id)
        with self.db.transaction() as tx:
            if found.frozen_at is not None:
                tx.execute("UPDATE timelines SET frozen_at = frozen_at + ? WHERE id = ?", (seconds, timeline_id))
            else:
                tx.execute("UPDATE timelines SET offset = offset + ? WHERE id = ?", (seconds, timeline_id))
                tx.execute("UPDATE schedule SET due_real = due_real - ? "
                           "WHERE timeline = ? AND due_real IS NOT NULL AND leased = 0", (seconds, timeline_id))
        self._timelines.pop(timeline_id, None)
        return self.now(timeline_id)

    def _real(self, timeline_id: str | None, due: float) -> float | None:
        if timeline_id is None:
            return due
        found = self.timeline(timeline_id)
        if found is None:
            raise KeyError(f"no timeline {timeline_id!r}")
        return None if found.frozen_at is not None else due - found.offset

    # ------------------------------------------------------------------------------------- items

    def add(self, kind: str, payload: dict[str, Any], *, due: float, timeline: str | None = None) -> int:
        """Schedule ``kind`` at ``due`` (the timeline's time); returns the item's id."""
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "INSERT INTO schedule (kind, timeline, due, due_real, payload) VALUES (?, ?, ?, ?, ?)",
                (kind, timeline, due, self._real(timeline, due), orjson.dumps(payload)),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def done(self, item_id: int) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM schedule WHERE id = ?", (item_id,))

    def reschedule(self, item_id: int, due: float, payload: dict[str, Any] | None = None) -> None:
        """Put a (leased) item back at ``due`` on its timeline, optionally with a new payload."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT timeline FROM schedule WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                return
            real = self._real(row["timeline"], due)
            if payload is None:
                tx.execute("UPDATE schedule SET due = ?, due_real = ?, leased = 0 WHERE id = ?", (due, real, item_id))
            else:
                tx.execute("UPDATE schedule SET due = ?, due_real = ?, leased = 0, payload = ? WHERE id = ?",
                           (due, real, orjson.dumps(payload), item_id))

    def due_now(self, now: float, limit: int, kinds: tuple[str, ...] | None = None, *,
                exclude: bool = False) -> list[Due]:
        """Items whose ``due_real`` has passed, oldest first: only of ``kinds`` when given (with ``exclude``,
        only of other kinds)."""
        if kinds is None or (exclude and not kinds):
            rows = self.db.conn.execute(
                "SELECT id, kind, timeline, due, attempts, payload FROM schedule "
                "WHERE due_real IS NOT NULL AND due_real <= ? ORDER BY due_real, id LIMIT ?", (now, limit),
            ).fetchall()
        else:
            marks = ",".join("?" * len(kinds))
            rows = self.db.conn.execute(
                "SELECT id, kind, timeline, due, attempts, payload FROM schedule "
                f"WHERE due_real IS NOT NULL AND due_real <= ? AND kind {'NOT IN' if exclude else 'IN'} ({marks}) "
                "ORDER BY due_real, id LIMIT ?",
                (now, *kinds, limit),
            ).fetchall()
        return [_due(row) for row in rows]

    def due_on(self, timeline_id: str, until: float, kinds: tuple[str, ...], limit: int) -> list[Due]:
        """Items of ``kinds`` on ``timeline_id`` due at or before ``until`` (timeline time), in order."""
        marks = ",".join("?" * len(kinds))
        rows = self.db.conn.execute(
            f"SELECT id, kind, timeline, due, attempts, payload FROM schedule WHERE timeline = ? AND due <= ? "
            f"AND leased = 0 AND kind IN ({marks}) ORDER BY due, id LIMIT ?", (timeline_id, until, *kinds, limit),
        ).fetchall()
        return [_due(row) for row in rows]

    def release_due_on(self, timeline_id: str, until: float, now: float) -> int:
        """Make every unleased item on ``timeline_id`` due by ``until`` due now on the gateway's clock
        (effects of a frozen timeline, so the background loop hands them out); how many."""
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE schedule SET due_real = ? WHERE timeline = ? AND due <= ? AND leased = 0 "
                "AND (due_real IS NULL OR due_real > ?)", (now, timeline_id, until, now),
            )
        return cursor.rowcount

    def lease(self, item_id: int, until: float) -> None:
        """Hide an effect item until ``until`` (gateway clock) while its call runs."""
        with self.db.transaction() as tx:
            tx.execute("UPDATE schedule SET leased = 1, due_real = ?, attempts = attempts + 1 WHERE id = ?",
                       (until, item_id))

    def release_leases(self, now: float) -> int:
        """At start: leases held by a process that is gone are due again at once (one gateway process
        owns a state directory; the chart refuses replicas while the store is SQLite)."""
        with self.db.transaction() as tx:
            cursor = tx.execute("UPDATE schedule SET leased = 0, due_real = ? WHERE leased = 1", (now,))
        return cursor.rowcount

    def next_due_real(self, kinds: tuple[str, ...] | None = None) -> float | None:
        if kinds is None:
            row = self.db.conn.execute("SELECT MIN(due_real) FROM schedule WHERE due_real IS NOT NULL").fetchone()
        else:
            marks = ",".join("?" * len(kinds))
            row = self.db.conn.execute(
                f"SELECT MIN(due_real) FROM schedule WHERE due_real IS NOT NULL AND kind IN ({marks})", kinds
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return int(self.db.conn.execute("SELECT COUNT(*) FROM schedule").fetchone()[0])
        return int(self.db.conn.execute("SELECT COUNT(*) FROM schedule WHERE kind = ?", (kind,)).fetchone()[0])
