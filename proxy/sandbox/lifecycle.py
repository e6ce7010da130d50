"""The simulated delivery lifecycle: ``queued → sent → delivered → read``, one step every ``step``.

Each step is a scheduler *step* (:mod:`proxy.scheduler`): it runs exactly once, inside the
transaction that deletes its schedule item, and in that one transaction it

1. moves the message's status by compare-and-set on its ``generation`` (a step scheduled before a
   forced event or a reset finds another generation and does nothing),
2. appends the history row,
3. appends the event live traffic would carry to the outbox (``message.sent``…, ``"test": true``),
4. schedules the next step ``step`` seconds later on the workspace's clock.

So after a ``kill -9`` a transition has happened with all four or not at all; steps that fell due
while the gateway was stopped run at start, in order, each stamped with the time it was due.

Magic numbers (:mod:`proxy.sandbox.magic`) turn the step into ``failed`` with a reason, or schedule a
reply (:mod:`proxy.sandbox.inbound`). :meth:`Lifecycle.force` makes any transition happen now (the
control surface's "trigger this event"); the lifecycle then goes on from the forced state.
"""

from __future__ import annotations

import sqlite3

from proxy.sandbox import shapes
from proxy.sandbox.inbound import Inbound
from proxy.sandbox.parts import Parts, fetch, stored
from proxy.sandbox.workspaces import Workspace
from proxy.store.schedule import Due

STEP = "sandbox.message_step"
REPLY = "sandbox.reply"
FAILED = "failed"


class Lifecycle:
    def __init__(self, parts: Parts, inbound: Inbound) -> None:
        self.parts = parts
        self.inbound = inbound
        parts.scheduler.step(STEP, self._step)
        parts.scheduler.step(REPLY, self._reply)

    def start(self, tx: sqlite3.Connection, ws: Workspace, message_id: str, at: float) -> float | None:
        """Schedule a new message's first step (its first state is its row's own: proxy/sandbox/schema.py);
        the step's due time."""
        following = ws.spec.next_state(ws.spec.states[0])
        return None if following is None else self._schedule(tx, ws, message_id, 0, following, at)

    def _schedule(self, tx: sqlite3.Connection, ws: Workspace, message_id: str, generation: int, state: str,
                  after: float) -> float:
        due = after + ws.spec.step_seconds
        self.parts.schedule.add(STEP, {"ws": ws.id, "id": message_id, "gen": generation, "to": state},
                                due=due, timeline=ws.id)
        return due

    def _history(self, tx: sqlite3.Connection, ws: Workspace, message_id: str, status: str, reason: str | None,
                 at: float) -> None:
        tx.execute("INSERT INTO sandbox_message_events (workspace, message, status, reason, at, ran_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (ws.id, message_id, status, reason, at, self.parts.clock.time()))

    def _step(self, tx: sqlite3.Connection, item: Due) -> None:
        ws = self.parts.workspaces.get(item.payload["ws"])
        if ws is None:  # the workspace is gone: nothing to move
            return
        row = fetch(tx, "sandbox_messages", ws, item.payload["id"])
        if row is None or row["generation"] != item.payload["gen"]:
            return  # reset, or a forced event moved the message on since this step was scheduled
        target, reason = item.payload["to"], None
        magic = ws.spec.magic.get(row["phone"]) if row["phone"] is not None else None
        if magic is not None and magic.fail_at == target:
            target, reason = FAILED, magic.reason
        self.apply(tx, ws, row, target, reason, item.due)

    def apply(self, tx: sqlite3.Connection, ws: Workspace, row: sqlite3.Row, status: str, reason: str | None,
              at: float) -> sqlite3.Row | None:
        """Move ``row`` to ``status`` (compare-and-set on its generation) with its history row, event and
        next step, in ``tx``; the changed row, or None when another transition got there first."""
        generation = row["generation"]
        cursor = tx.execute(
            "UPDATE sandbox_messages SET status = ?, failure_reason = ?, generation = ?, updated_at = ? "
            "WHERE workspace = ? AND id = ? AND generation = ?",
            (status, reason if status == FAILED else None, generation + 1, at, ws.id, row["id"], generation))
        if cursor.rowcount != 1:
            return None
        self._history(tx, ws, row["id"], status, reason, at)
        changed = stored(tx, "sandbox_messages", ws, row["id"])
        self.parts.emit(tx, ws, status, row["id"], at, shapes.message(ws.spec, changed))
        following = None if status == FAILED else ws.spec.next_state(status)
        if following is not None:
            self._schedule(tx, ws, row["id"], generation + 1, following, at)
        magic = ws.spec.magic.get(row["phone"]) if row["phone"] is not None else None
        if magic is not None and magic.reply_text and status == magic.reply_after and row["direction"] == "outbound":
            self.parts.schedule.add(REPLY, {"ws": ws.id, "id": row["id"], "phone": row["phone"],
                                            "channel": row["channel"], "text": magic.reply_text},
                                    due=at + magic.reply_delay_steps * ws.spec.step_seconds, timeline=ws.id)
        return changed

    def _reply(self, tx: sqlite3.Connection, item: Due) -> None:
        ws = self.parts.workspaces.get(item.payload["ws"])
        if ws is None:
            return
        p = item.payload
        self.inbound.receive(tx, ws, p["phone"], p["text"], p["channel"], item.due, in_reply_to=p["id"])

    def force(self, ws: Workspace, row: sqlite3.Row, status: str, reason: str | None) -> sqlite3.Row | None:
        """Make ``status`` happen to ``row`` now (the lifecycle goes on from there); None if it could not."""
        at = self.parts.workspaces.now(ws)
        with self.parts.writing() as tx:
            changed = self.apply(tx, ws, row, status, reason, at)
        if changed is not None:
            self.parts.due_in(ws.spec.step_seconds)
        return changed
