"""Stored rows → the objects a client sees, through the policy's shapes (``sandbox.shapes``).

Each function builds the environment one shape template reads (``contact``, ``message``, …: plain
values, times already as ISO 8601 with milliseconds, ✅ Blueticked's format) and renders it with the
policy's compiled template. Field names and layout are policy data; what is *in* each environment is
documented in policies/README.md, "sandbox".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from proxy.clock import iso_ms
from proxy.sandbox.spec import SandboxSpec

Row = sqlite3.Row | Mapping[str, Any]  # a stored row, or one just written, as a dict


_last_second: tuple[int, str] = (-1, "")


def iso(ts: float) -> str:
    """:func:`proxy.clock.iso_ms`, with the formatted second remembered (formatting it costs ~3 µs, and
    the objects of one second share it)."""
    global _last_second
    second = int(ts)
    if _last_second[0] != second:
        _last_second = (second, iso_ms(second)[:-4])
    return f"{_last_second[1]}{int(ts * 1000) % 1000:03d}Z"


def contact(spec: SandboxSpec, row: Row, suppressed: bool) -> Any:
    phone, email = row["phone"], row["email"]
    return spec.shapes["contact"]({"contact": {
        "id": row["id"], "first_name": row["first_name"], "last_name": row["last_name"], "phone": phone,
        "email": email, "tags": orjson.loads(row["tags"]), "has_whatsapp": phone is not None,
        "has_sms": phone is not None, "has_email": email is not None, "suppressed": suppressed,
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }})


def suppression(spec: SandboxSpec, row: Row) -> Any:
    return spec.shapes["suppression"]({"entry": {
        "id": row["id"], "identifier": row["identifier"], "channel": row["channel"], "reason": row["reason"],
        "reason_detail": row["reason_detail"], "created_at": iso(row["created_at"]),
    }})


def template(spec: SandboxSpec, row: Row) -> Any:
    return spec.shapes["template"]({"template": {
        "id": row["id"], "name": row["name"], "category": row["category"], "language": row["language"],
        "body": row["body"], "header_format": row["header_format"], "status": row["status"],
        "rejection_reason": row["rejection_reason"], "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }})


def message(spec: SandboxSpec, row: Row, history: Sequence[Any] | None = None) -> Any:
    """A message; with ``history``, its event history too (``GET``), without it as in a webhook payload."""
    address = {"phone": row["phone"]} if row["phone"] is not None else {"email": row["email"]}
    inbound = row["direction"] == "inbound"
    env: dict[str, Any] = {
        "id": row["id"], "direction": row["direction"], "channel": row["channel"], "status": row["status"],
        "contact_id": row["contact_id"], "to": None if inbound else address, "from": address if inbound else None,
        "template_id": row["template_id"], "subject": row["subject"], "body": row["body"],
        "failure_reason": row["failure_reason"], "in_reply_to": row["in_reply_to"],
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }
    if history is not None:
        env["events"] = [{"status": h["status"], "at": iso(h["at"]), "reason": h["reason"]} for h in history]
    return spec.shapes["message"]({"message": env})


def page(spec: SandboxSpec, data: list[Any], next_cursor: str | None) -> Any:
    more = next_cursor is not None
    return spec.shapes["page"]({"page": {"data": data, "next_cursor": next_cursor, "has_more": more}})


def validated(spec: SandboxSpec, channel: str, to: dict[str, str], contact_id: str | None,
              template_id: str | None, preview: str) -> Any:
    return spec.shapes["validated"]({"check": {"channel": channel, "to": to, "contact_id": contact_id,
                                               "template_id": template_id, "preview": preview}})


def removed(spec: SandboxSpec, object_id: str) -> Any:
    return spec.shapes["removed"]({"removed": {"id": object_id}})


def event_payload(spec: SandboxSpec, event_id: str, event_type: str, at: float, data: Any) -> bytes:
    """The event's body exactly as it is delivered (the outbox keeps these bytes)."""
    return orjson.dumps(spec.shapes["event"]({"event": {"id": event_id, "type": event_type,
                                                        "created_at": iso(at), "data": data}}))
