"""Messages: send on ``whatsapp``, ``sms`` or ``email``, get (status and event history), list.

A send is checked like Blueticked checks it (the contact exists and has the channel's address, the
recipient is not suppressed, the template is approved and its variables fit; :mod:`proxy.sandbox.checks`),
then stored ``queued`` with its first lifecycle step scheduled (:mod:`proxy.sandbox.lifecycle`), all in
one transaction. With ``test_mode: true`` the same checks run and nothing at all is written: the answer
is ``status: "validated"`` with ``rendered_body_preview``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from proxy.sandbox import checks, shapes
from proxy.sandbox.lifecycle import Lifecycle
from proxy.sandbox.parts import Answer, Call, Parts, fetch, page
from proxy.sandbox.suppression import normalize
from proxy.sandbox.workspaces import Workspace

# Everything a send's checks read, in one statement: the contact (by phone or email), the suppression
# entry that blocks its address on the channel, and the template. One statement, not three: a send is
# the sandbox's hot path (bench/sandbox.py).
_CHECK = """
    SELECT c.id, c.phone, c.email,
           (SELECT s.reason FROM sandbox_suppression s
             WHERE s.workspace = c.workspace AND s.channel IN ('all', ?)
               AND s.identifier = CASE WHEN ? = 'email' THEN c.email ELSE c.phone END
             LIMIT 1) AS suppressed,
           t.id AS t_id, t.status AS t_status, t.body AS t_body, t.header_format AS t_header_format
      FROM sandbox_contacts c LEFT JOIN sandbox_templates t ON t.workspace = c.workspace AND t.id = ?
     WHERE c.workspace = ? AND """


class Messages:
    def __init__(self, parts: Parts, lifecycle: Lifecycle) -> None:
        self.parts = parts
        self.lifecycle = lifecycle

    def by_id(self, ws: Workspace, message_id: str) -> sqlite3.Row:
        row = fetch(self.parts.db.conn, "sandbox_messages", ws, message_id)
        if row is None:
            raise ws.spec.error("message_not_found", id=message_id)
        return row

    def history(self, ws: Workspace, row: sqlite3.Row) -> list[Any]:
        """The message's first state at its creation, then each transition (proxy/sandbox/schema.py)."""
        first = ws.spec.states[0] if row["direction"] == "outbound" else "received"
        return [{"status": first, "reason": None, "at": row["created_at"]}, *self.parts.db.conn.execute(
            "SELECT status, reason, at FROM sandbox_message_events WHERE workspace = ? AND message = ? ORDER BY seq",
            (ws.id, row["id"])).fetchall()]

    def render(self, ws: Workspace, row: sqlite3.Row) -> Any:
        return shapes.message(ws.spec, row, self.history(ws, row))

    def check(self, ws: Workspace, body: dict[str, Any]) -> tuple[sqlite3.Row, str, str]:
        """(the contact, its address on the channel, the rendered body) of a send that may go; else raises."""
        spec, channel = ws.spec, body["channel"]
        phone, email, identifier = checks.recipient(body)
        template_id = body.get("template_id")
        found = None
        if phone is not None:
            found = self.parts.db.conn.execute(_CHECK + "c.phone = ?", (channel, channel, template_id, ws.id,
                                                                        phone)).fetchone()
        if found is None and email is not None:
            found = self.parts.db.conn.execute(_CHECK + "c.email = ?", (channel, channel, template_id, ws.id,
                                                                        normalize(email))).fetchone()
        if found is None:
            raise spec.error("contact_not_found", identifier=identifier)
        to = checks.address(spec, channel, found["phone"], found["email"])
        checks.suppressed(spec, to, found["suppressed"])
        if template_id is None:
            return found, to, checks.free_text_preview(spec, body)
        if found["t_id"] is None:
            raise spec.error("template_not_found", id=template_id)
        template = {"id": found["t_id"], "status": found["t_status"], "body": found["t_body"],
                    "header_format": found["t_header_format"]}
        return found, to, checks.template_preview(spec, body, template)

    # ---------------------------------------------------------------------------------- operations

    def send(self, ws: Workspace, call: Call) -> Answer:
        body, spec = call.body, ws.spec
        contact, to, preview = self.check(ws, body)
        channel = body["channel"]
        if body.get("test_mode") is True:  # validate-only: nothing is written, anywhere
            address = {"email": to} if channel == "email" else {"phone": to}
            return spec.statuses["validated"], shapes.validated(spec, channel, address, contact["id"],
                                                                body.get("template_id"), preview)
        self.parts.workspaces.ensure(ws)
        at = self.parts.workspaces.now(ws)
        phone, email = (None, to) if channel == "email" else (to, None)
        with self.parts.writing() as tx:
            message_id = self.parts.workspaces.new_id(tx, ws, "message")
            row = {"id": message_id, "direction": "outbound", "channel": channel, "status": spec.states[0],
                   "contact_id": contact["id"], "phone": phone, "email": email, "template_id": body.get("template_id"),
                   "subject": body.get("subject"), "body": preview, "failure_reason": None, "in_reply_to": None,
                   "created_at": at, "updated_at": at}
            tx.execute(
                "INSERT INTO sandbox_messages (workspace, id, direction, channel, status, contact_id, phone, email, "
                "template_id, subject, body, created_at, updated_at) "
                "VALUES (?, ?, 'outbound', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ws.id, message_id, channel, row["status"], row["contact_id"], phone, email, row["template_id"],
                 row["subject"], preview, at, at))
            due = self.lifecycle.start(tx, ws, message_id, at)
        if due is not None:
            self.parts.due_in(due - at)
        return spec.statuses["queued"], shapes.message(spec, row, [{"status": spec.states[0], "reason": None,
                                                                    "at": at}])

    def get(self, ws: Workspace, call: Call) -> Answer:
        return ws.spec.statuses["ok"], self.render(ws, self.by_id(ws, call.path["id"]))

    def list(self, ws: Workspace, call: Call) -> Answer:
        return page(self.parts, ws, "sandbox_messages", call, lambda row: self.render(ws, row),
                    filters=("status", "direction", "channel"))
