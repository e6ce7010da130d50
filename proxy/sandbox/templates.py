"""WhatsApp templates (Blueticked TP ✅): created ``pending``, reviewed one lifecycle step later.

The review approves the template, or rejects it with a reason: when its body breaks one of Meta's
placeholder rules that the policy checks at review (:mod:`proxy.sandbox.placeholders`), or when its
name is one of the policy's magic rejected names. Rules the policy checks at creation refuse the
template outright (``template_invalid``). Only ``approved`` templates can send.
"""

from __future__ import annotations

import sqlite3

from proxy.sandbox import placeholders, shapes
from proxy.sandbox.parts import Answer, Call, Parts, fetch, page, stored
from proxy.sandbox.workspaces import Workspace
from proxy.store.schedule import Due

REVIEW = "sandbox.template_review"


class Templates:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        parts.scheduler.step(REVIEW, self._review)

    def by_id(self, ws: Workspace, template_id: str) -> sqlite3.Row:
        row = fetch(self.parts.db.conn, "sandbox_templates", ws, template_id)
        if row is None:
            raise ws.spec.error("template_not_found", id=template_id)
        return row

    def verdict(self, ws: Workspace, name: str, body: str) -> str | None:
        """Why the review rejects this template, or None when it approves it."""
        review = ws.spec.templates
        if name in review.rejected_names:
            return review.rejected_names[name]
        for rule in placeholders.breaches(body):
            at, reason = review.rules[rule]
            if at == "review":
                return reason
        return None

    def _review(self, tx: sqlite3.Connection, item: Due) -> None:
        ws = self.parts.workspaces.get(item.payload["ws"])
        if ws is None:
            return
        row = tx.execute("SELECT * FROM sandbox_templates WHERE workspace = ? AND id = ? AND status = 'pending'",
                         (ws.id, item.payload["id"])).fetchone()
        if row is None:
            return
        reason = self.verdict(ws, row["name"], row["body"])
        tx.execute("UPDATE sandbox_templates SET status = ?, rejection_reason = ?, updated_at = ? "
                   "WHERE workspace = ? AND id = ?",
                   ("rejected" if reason else "approved", reason, item.due, ws.id, row["id"]))

    # ---------------------------------------------------------------------------------- operations

    def create(self, ws: Workspace, call: Call) -> Answer:
        body = call.body
        spec = ws.spec
        for rule in placeholders.breaches(body["body"]):
            when, reason = spec.templates.rules[rule]
            if when == "create":
                raise spec.error("template_invalid", reason=reason)
        conn = self.parts.db.conn
        if conn.execute("SELECT 1 FROM sandbox_templates WHERE workspace = ? AND name = ? AND language = ?",
                        (ws.id, body["name"], body["language"])).fetchone() is not None:
            raise spec.error("template_exists", name=body["name"], language=body["language"])
        self.parts.workspaces.ensure(ws)
        at = self.parts.workspaces.now(ws)
        due = at + spec.templates.review_steps * spec.step_seconds
        with self.parts.writing() as tx:
            template_id = self.parts.workspaces.new_id(tx, ws, "template")
            tx.execute(
                "INSERT INTO sandbox_templates (workspace, id, name, category, language, body, header_format, status, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (ws.id, template_id, body["name"], body["category"], body["language"], body["body"],
                 body.get("header_format"), at, at))
            self.parts.schedule.add(REVIEW, {"ws": ws.id, "id": template_id}, due=due, timeline=ws.id)
            row = stored(tx, "sandbox_templates", ws, template_id)
        self.parts.due_in(due - at)
        return spec.statuses["created"], shapes.template(spec, row)

    def get(self, ws: Workspace, call: Call) -> Answer:
        return ws.spec.statuses["ok"], shapes.template(ws.spec, self.by_id(ws, call.path["id"]))

    def list(self, ws: Workspace, call: Call) -> Answer:
        return page(self.parts, ws, "sandbox_templates", call, lambda row: shapes.template(ws.spec, row),
                    filters=("status",))
