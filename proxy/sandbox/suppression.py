"""The suppression list (Blueticked SU ✅): identifiers never to message, per channel or ``all``.

Adding is idempotent (re-adding an identifier on a channel returns the existing entry); the list is
newest first with an optional ``channel`` filter; a STOP reply adds an entry with reason
``stop_keyword`` (:mod:`proxy.sandbox.inbound`). A send to a suppressed identifier is refused with the
policy's ``recipient_suppressed`` error (a sandbox choice: Blueticked skips it silently, which a test
could not see).
"""

from __future__ import annotations

import sqlite3

from proxy.sandbox import shapes
from proxy.sandbox.parts import Answer, Call, Parts, page, stored
from proxy.sandbox.workspaces import Workspace


def normalize(identifier: str) -> str:
    """Phone numbers as given (E.164 is already canonical); email addresses lower-cased."""
    return identifier.lower() if "@" in identifier else identifier


class Suppressions:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def blocking(self, ws: Workspace, identifier: str, channel: str) -> sqlite3.Row | None:
        """The entry that stops a send to ``identifier`` on ``channel``, if any."""
        row: sqlite3.Row | None = self.parts.db.conn.execute(
            "SELECT * FROM sandbox_suppression WHERE workspace = ? AND identifier = ? AND channel IN ('all', ?) "
            "LIMIT 1", (ws.id, normalize(identifier), channel)).fetchone()
        return row

    def any_for(self, ws: Workspace, identifiers: list[str]) -> bool:
        """Whether any entry names one of ``identifiers`` (a contact's ``suppressed`` flag)."""
        wanted = [normalize(i) for i in identifiers if i]
        if not wanted:
            return False
        marks = ",".join("?" * len(wanted))
        return self.parts.db.conn.execute(
            f"SELECT 1 FROM sandbox_suppression WHERE workspace = ? AND identifier IN ({marks}) LIMIT 1",
            (ws.id, *wanted)).fetchone() is not None

    def insert(self, tx: sqlite3.Connection, ws: Workspace, identifier: str, channel: str, reason: str,
               detail: str | None, at: float) -> tuple[sqlite3.Row, bool]:
        """(the entry, whether it is new): the existing one when ``identifier`` is already on ``channel``."""
        identifier = normalize(identifier)
        existing = tx.execute("SELECT * FROM sandbox_suppression WHERE workspace = ? AND identifier = ? "
                              "AND channel = ?", (ws.id, identifier, channel)).fetchone()
        if existing is not None:
            return existing, False
        entry_id = self.parts.workspaces.new_id(tx, ws, "suppression")
        tx.execute("INSERT INTO sandbox_suppression (workspace, id, identifier, channel, reason, reason_detail, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (ws.id, entry_id, identifier, channel, reason, detail, at))
        row = stored(tx, "sandbox_suppression", ws, entry_id)
        return row, True

    # ---------------------------------------------------------------------------------- operations

    def add(self, ws: Workspace, call: Call) -> Answer:
        body = call.body
        self.parts.workspaces.ensure(ws)
        with self.parts.writing() as tx:
            row, new = self.insert(tx, ws, body["identifier"], body.get("channel") or "all",
                                   body.get("reason") or "manual", body.get("reason_detail"),
                                   self.parts.workspaces.now(ws))
        return ws.spec.statuses["created" if new else "ok"], shapes.suppression(ws.spec, row)

    def list(self, ws: Workspace, call: Call) -> Answer:
        return page(self.parts, ws, "sandbox_suppression", call, lambda r: shapes.suppression(ws.spec, r),
                    filters=("channel",))

    def remove(self, ws: Workspace, call: Call) -> Answer:
        entry_id = call.path["id"]
        with self.parts.writing() as tx:
            cursor = tx.execute("DELETE FROM sandbox_suppression WHERE workspace = ? AND id = ?", (ws.id, entry_id))
        if cursor.rowcount != 1:
            raise ws.spec.error("suppression_not_found", id=entry_id)
        return ws.spec.statuses["removed"], shapes.removed(ws.spec, entry_id)
