"""Contacts (Blueticked CO ✅): upsert matching by phone or email, get, list, partial update.

Every send targets an existing contact. ``channels`` are derived (a phone gives WhatsApp and SMS, an
email gives email) and ``suppressed`` comes from the suppression list. Creating or changing a contact
emits ``contact.created`` / ``contact.updated``, as live traffic does (WH ✅).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from proxy.sandbox import shapes
from proxy.sandbox.parts import Answer, Call, Parts, fetch, page, stored
from proxy.sandbox.suppression import Suppressions, normalize
from proxy.sandbox.workspaces import Workspace

_FIELDS = ("phone", "email", "first_name", "last_name", "tags")


class Contacts:
    def __init__(self, parts: Parts, suppressions: Suppressions) -> None:
        self.parts = parts
        self.suppressions = suppressions

    def find(self, ws: Workspace, phone: str | None = None, email: str | None = None) -> sqlite3.Row | None:
        """The contact with this phone, else the one with this email."""
        conn = self.parts.db.conn
        row: sqlite3.Row | None = None
        if phone is not None:
            row = conn.execute("SELECT * FROM sandbox_contacts WHERE workspace = ? AND phone = ?",
                               (ws.id, phone)).fetchone()
        if row is None and email is not None:
            row = conn.execute("SELECT * FROM sandbox_contacts WHERE workspace = ? AND email = ?",
                               (ws.id, normalize(email))).fetchone()
        return row

    def by_id(self, ws: Workspace, contact_id: str) -> sqlite3.Row:
        row = fetch(self.parts.db.conn, "sandbox_contacts", ws, contact_id)
        if row is None:
            raise ws.spec.error("contact_not_found", identifier=contact_id)
        return row

    def render(self, ws: Workspace, row: sqlite3.Row) -> Any:
        return shapes.contact(ws.spec, row, self.suppressions.any_for(ws, [row["phone"], row["email"]]))

    def create(self, tx: sqlite3.Connection, ws: Workspace, values: dict[str, Any], at: float) -> sqlite3.Row:
        """Insert a contact and emit ``contact.created`` (in ``tx``)."""
        contact_id = self.parts.workspaces.new_id(tx, ws, "contact")
        tx.execute(
            "INSERT INTO sandbox_contacts (workspace, id, phone, email, first_name, last_name, tags, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ws.id, contact_id, values.get("phone"), values.get("email"), values.get("first_name"),
             values.get("last_name"), orjson.dumps(values.get("tags") or []).decode(), at, at))
        row = stored(tx, "sandbox_contacts", ws, contact_id)
        self.parts.emit(tx, ws, "contact_created", contact_id, at, self.render(ws, row))
        return row

    def _check_unique(self, ws: Workspace, contact_id: str | None, values: dict[str, Any]) -> None:
        for name in ("phone", "email"):
            if values.get(name) is None:
                continue
            other = self.find(ws, **{name: values[name]})
            if other is not None and other["id"] != contact_id:
                raise ws.spec.error("contact_conflict", identifier=values[name], other=other["id"])

    def _change(self, ws: Workspace, row: sqlite3.Row, values: dict[str, Any]) -> sqlite3.Row:
        """Apply ``values`` (only the fields given; ``None`` clears) and emit ``contact.updated``."""
        at = self.parts.workspaces.now(ws)
        sets = [f"{name} = ?" for name in _FIELDS if name in values]
        args = [orjson.dumps(values[n] or []).decode() if n == "tags" else values[n] for n in _FIELDS if n in values]
        with self.parts.writing() as tx:
            tx.execute(f"UPDATE sandbox_contacts SET {', '.join(sets)}, updated_at = ? "
                       "WHERE workspace = ? AND id = ?", (*args, at, ws.id, row["id"]))
            changed = stored(tx, "sandbox_contacts", ws, row["id"])
            self.parts.emit(tx, ws, "contact_updated", row["id"], at, self.render(ws, changed))
        return changed

    # ---------------------------------------------------------------------------------- operations

    def upsert(self, ws: Workspace, call: Call) -> Answer:
        values = {name: call.body[name] for name in _FIELDS if name in call.body}
        if values.get("email") is not None:
            values["email"] = normalize(values["email"])
        by_phone = self.find(ws, phone=values.get("phone"))
        by_email = self.find(ws, email=values.get("email"))
        if by_phone is not None and by_email is not None and by_phone["id"] != by_email["id"]:
            raise ws.spec.error("contact_conflict", identifier=values["email"], other=by_email["id"])
        existing = by_phone or by_email
        if existing is not None:
            return ws.spec.statuses["updated"], self.render(ws, self._change(ws, existing, values))
        self.parts.workspaces.ensure(ws)
        with self.parts.writing() as tx:
            row = self.create(tx, ws, values, self.parts.workspaces.now(ws))
        return ws.spec.statuses["created"], self.render(ws, row)

    def get(self, ws: Workspace, call: Call) -> Answer:
        return ws.spec.statuses["ok"], self.render(ws, self.by_id(ws, call.path["id"]))

    def list(self, ws: Workspace, call: Call) -> Answer:
        return page(self.parts, ws, "sandbox_contacts", call, lambda row: self.render(ws, row))

    def update(self, ws: Workspace, call: Call) -> Answer:
        row = self.by_id(ws, call.path["id"])
        values = {name: call.body[name] for name in _FIELDS if name in call.body}
        if not values:
            raise ws.spec.error("bad_query", message="Give at least one of: " + ", ".join(_FIELDS) + ".")
        if values.get("email") is not None:
            values["email"] = normalize(values["email"])
        self._check_unique(ws, row["id"], values)
        return ws.spec.statuses["ok"], self.render(ws, self._change(ws, row, values))
