"""Inbound messages: a simulated reply (magic number ``+27800000003``) or one a test injects through
the control surface (``POST /_testmode/sandbox/inbound``).

An inbound message is stored like any message (direction ``inbound``, status ``received``), readable
with ``GET /v1/messages/{id}``, and emits ``message.received``. A sender the workspace does not know
becomes a contact (``contact.created``), as a new WhatsApp conversation would. A reply that is an
opt-out keyword (``STOP``…, policy data) adds a suppression entry with reason ``stop_keyword``
(Blueticked SU ✅).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from proxy.sandbox import shapes
from proxy.sandbox.contacts import Contacts
from proxy.sandbox.parts import Parts, stored
from proxy.sandbox.suppression import Suppressions
from proxy.sandbox.workspaces import Workspace


@dataclass(frozen=True, slots=True)
class Received:
    message: sqlite3.Row
    suppression: sqlite3.Row | None  # the entry a STOP added (or found), if the text was an opt-out


class Inbound:
    def __init__(self, parts: Parts, contacts: Contacts, suppressions: Suppressions) -> None:
        self.parts = parts
        self.contacts = contacts
        self.suppressions = suppressions

    def receive(self, tx: sqlite3.Connection, ws: Workspace, phone: str, text: str, channel: str, at: float,
                in_reply_to: str | None = None) -> Received:
        """Record a message from ``phone`` (in ``tx``), with its event, and any opt-out it carries."""
        contact = self.contacts.find(ws, phone=phone)
        if contact is None:
            contact = self.contacts.create(tx, ws, {"phone": phone}, at)
        message_id = self.parts.workspaces.new_id(tx, ws, "message")
        tx.execute(
            "INSERT INTO sandbox_messages (workspace, id, direction, channel, status, contact_id, phone, body, "
            "in_reply_to, created_at, updated_at) VALUES (?, ?, 'inbound', ?, 'received', ?, ?, ?, ?, ?, ?)",
            (ws.id, message_id, channel, contact["id"], phone, text, in_reply_to, at, at))
        row = stored(tx, "sandbox_messages", ws, message_id)
        self.parts.emit(tx, ws, "received", message_id, at, shapes.message(ws.spec, row))
        entry = None
        if text.strip().upper() in ws.spec.stop_keywords:
            entry, _ = self.suppressions.insert(tx, ws, phone, ws.spec.stop_channel, "stop_keyword",
                                                f"Replied {text.strip()!r} on {channel}", at)
        return Received(row, entry)
