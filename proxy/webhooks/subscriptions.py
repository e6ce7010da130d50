"""Webhook subscriptions: per workspace, a URL, the events wanted, a secret, active or disabled, drills.

The secret signs every delivery, so it is stored as written (an HMAC key cannot be kept as a digest);
the state directory is the boundary that protects it, as it protects the sandbox's data. It is shown
once, in the answer that creates the subscription, and never listed again.

Failure drills (``drills``): the share of deliveries (0 to 1) that a subscription wants duplicated,
delivered out of order, or preceded by a copy with a wrong signature (:mod:`proxy.webhooks.delivery`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.clock import iso_ms
from proxy.settings import Secret
from proxy.store.database import Database

MIGRATIONS = [
    """
    CREATE TABLE webhook_subscriptions (
        id TEXT PRIMARY KEY,
        workspace TEXT NOT NULL,
        policy TEXT NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        status TEXT NOT NULL,
        disabled_reason TEXT,
        description TEXT NOT NULL DEFAULT '',
        drills TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX webhook_subscriptions_by_workspace ON webhook_subscriptions (workspace, status)
    """,
]

DRILLS = ("duplicate", "out_of_order", "wrong_signature")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    workspace: str
    policy: str
    url: str
    events: tuple[str, ...]  # empty: every event
    secret: Secret
    status: str  # active | disabled
    disabled_reason: str | None
    description: str
    drills: Mapping[str, float] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        """The subscription as the API and CLI show it; the secret only when it was just created."""
        doc: dict[str, Any] = {
            "id": self.id, "object": "webhook_subscription", "workspace": self.workspace, "policy": self.policy,
            "url": self.url, "events": list(self.events) or ["*"], "status": self.status,
            "disabled_reason": self.disabled_reason, "description": self.description,
            "drills": {name: self.drills.get(name, 0.0) for name in DRILLS},
            "created_at": iso_ms(self.created_at), "updated_at": iso_ms(self.updated_at),
        }
        if with_secret:
            doc["secret"] = self.secret.reveal()
        return doc


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        row["id"], row["workspace"], row["policy"], row["url"], tuple(orjson.loads(row["events"])),
        Secret(row["secret"]), row["status"], row["disabled_reason"], row["description"],
        orjson.loads(row["drills"]), row["created_at"], row["updated_at"],
    )


class Subscriptions:
    """The store. Every method runs in the caller's transaction when there is one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("webhook_subscriptions", MIGRATIONS)

    def add(
        self, *, workspace: str, policy: str, url: str, events: Iterable[str], secret: str, now: float,
        description: str = "", drills: Mapping[str, float] | None = None,
    ) -> Subscription:
        sub_id = "wh_" + os.urandom(12).hex()
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO webhook_subscriptions (id, workspace, policy, url, events, secret, status, description, "
                "drills, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                (sub_id, workspace, policy, url, orjson.dumps(sorted(set(events))), secret, description,
                 orjson.dumps(dict(drills or {})), now, now),
            )
        found = self.get(sub_id)
        assert found is not None
        return found

    def get(self, sub_id: str, workspace: str | None = None) -> Subscription | None:
        row = self.db.conn.execute("SELECT * FROM webhook_subscriptions WHERE id = ?", (sub_id,)).fetchone()
        if row is None or (workspace is not None and row["workspace"] != workspace):
            return None  # another workspace's subscription does not exist for this caller
        return _subscription(row)

    def listed(self, workspace: str | None = None) -> list[Subscription]:
        if workspace is None:
            rows = self.db.conn.execute("SELECT * FROM webhook_subscriptions ORDER BY created_at, id").fetchall()
        else:
            rows = self.db.conn.execute("SELECT * FROM webhook_subscriptions WHERE workspace = ? "
                                        "ORDER BY created_at, id", (workspace,)).fetchall()
        return [_subscription(row) for row in rows]

    def active(self, workspace: str) -> list[Subscription]:
        rows = self.db.conn.execute("SELECT * FROM webhook_subscriptions WHERE workspace = ? AND status = 'active' "
                                    "ORDER BY created_at, id", (workspace,)).fetchall()
        return [_subscription(row) for row in rows]

    def update(self, sub_id: str, now: float, **changes: Any) -> Subscription | None:
        """Change ``url``, ``events``, ``description``, ``drills`` or ``status`` (re-enabling clears the reason)."""
        columns: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("events", "drills"):
                columns[name] = orjson.dumps(sorted(set(value)) if name == "events" else dict(value))
            elif name in ("url", "description", "status", "disabled_reason"):
                columns[name] = value
            else:
                raise ValueError(f"cannot change {name!r}")
        if columns.get("status") == "active":
            columns["disabled_reason"] = None
        columns["updated_at"] = now
        sets = ", ".join(f"{name} = ?" for name in columns)
        with self.db.transaction() as tx:
            tx.execute(f"UPDATE webhook_subscriptions SET {sets} WHERE id = ?", (*columns.values(), sub_id))
        return self.get(sub_id)

    def disable(self, sub_id: str, reason: str, now: float) -> None:
        self.update(sub_id, now, status="disabled", disabled_reason=reason)

    def remove(self, sub_id: str) -> bool:
        with self.db.transaction() as tx:
            cursor = tx.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (sub_id,))
        return cursor.rowcount > 0
