"""Workspaces: who owns which simulated data, its clock, and its ids.

A sandbox key's workspace is its own by default (``<policy>/<key id>``); issued sandbox keys created
with ``keys create --workspace NAME`` share ``<policy>/ws:NAME``. Every table row names its workspace
and every lookup filters on it, so workspaces never see each other's data.

Each workspace has a timeline (:mod:`proxy.store.schedule`) under the workspace's own id: its clock.
It follows the gateway's clock, moved ahead by every ``advance``. A workspace with a **seed** is
deterministic: its timeline is frozen at ``start`` (2026-01-01T00:00:00Z unless given) and moves only
when advanced, and its ids are ``prefix + SHA-256(seed, workspace, n)`` for the n-th id it issues, so
the same calls give the same ids, timestamps and event order on every run. Setting a seed resets
the workspace: a deterministic run starts from nothing.

Reads never create anything: a workspace gets its row and timeline on its first write
(:meth:`Workspaces.ensure`, its own commit), so a validate-only request leaves no row anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from proxy.policy.model import Policy, PolicySet
from proxy.sandbox.schema import DATA_TABLES, MIGRATIONS
from proxy.sandbox.spec import SandboxSpec
from proxy.store.database import Database
from proxy.store.outbox import Outbox
from proxy.store.schedule import Schedule

DETERMINISTIC_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str  # also its timeline's id, and the outbox's ``workspace``
    policy: Policy
    seed: str | None = None
    start: float | None = None  # where a seeded workspace's frozen clock starts

    @property
    def spec(self) -> SandboxSpec:
        spec = self.policy.sandbox
        assert spec is not None
        return spec


def workspace_id(policy: str, key_id: str, named: str | None) -> str:
    """``blueticked/key_ab12…`` (one key's own), or ``blueticked/ws:team-a`` (shared by name)."""
    return f"{policy}/ws:{named}" if named else f"{policy}/{key_id}"


def encode_cursor(object_id: str) -> str:
    return base64.urlsafe_b64encode(object_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        decoded = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded or None


class Workspaces:
    def __init__(self, db: Database, schedule: Schedule, outbox: Outbox, policies: PolicySet) -> None:
        db.migrate("sandbox", MIGRATIONS)
        self.db = db
        self.schedule = schedule
        self.outbox = outbox
        self.policies = policies
        self._cache: dict[str, Workspace] = {}
        self._stored: set[str] = set()  # ids whose row and timeline exist
        self._reset_listeners: list[Callable[[str], None]] = []

    def on_reset(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(workspace_id)`` inside every reset's transaction (webhook delivery ends the
        workspace's open deliveries there: their events are gone)."""
        self._reset_listeners.append(listener)

    def resolve(self, policy: Policy, key_id: str, named: str | None) -> Workspace:
        """The workspace of a sandbox key (nothing is written)."""
        wid = workspace_id(policy.name, key_id, named)
        found = self._cache.get(wid)
        return found if found is not None else self._load(wid, policy)

    def get(self, wid: str) -> Workspace | None:
        """A stored workspace by id (for scheduled steps), or None once it is gone."""
        found = self._cache.get(wid)
        if found is not None:
            return found
        row = self.db.conn.execute("SELECT policy FROM sandbox_workspaces WHERE id = ?", (wid,)).fetchone()
        policy = self.policies.by_name(row["policy"]) if row is not None else None
        if policy is None or policy.sandbox is None:
            return None
        return self._load(wid, policy)

    def _load(self, wid: str, policy: Policy) -> Workspace:
        row = self.db.conn.execute("SELECT seed, start FROM sandbox_workspaces WHERE id = ?", (wid,)).fetchone()
        found = Workspace(wid, policy, row["seed"] if row else None, row["start"] if row else None)
        if row is not None:
            self._stored.add(wid)
        self._cache[wid] = found
        return found

    def ensure(self, ws: Workspace) -> None:
        """Create the workspace's row and timeline before its first write (committed on its own, so a
        write that fails afterwards never leaves data without its workspace)."""
        if ws.id in self._stored:
            return
        with self.db.transaction() as tx:
            tx.execute("INSERT OR IGNORE INTO sandbox_workspaces (id, policy, seed, start, created_at) "
                       "VALUES (?, ?, ?, ?, ?)", (ws.id, ws.policy.name, ws.seed, ws.start, self.schedule.now()))
            self.schedule.ensure_timeline(ws.id, frozen_at=ws.start if ws.seed is not None else None)
        self._stored.add(ws.id)

    def now(self, ws: Workspace) -> float:
        """The time on the workspace's clock (the gateway's, before its first write)."""
        return self.schedule.now(ws.id)

    def new_id(self, tx: sqlite3.Connection, ws: Workspace, kind: str) -> str:
        """A fresh id for an object of ``kind`` (in ``tx``: a seeded workspace counts its ids there).

        24 hex digits after the prefix: 11 that grow with time (milliseconds on the gateway's clock) or,
        seeded, with the workspace's count of ids, then 13 random ones (seeded: from SHA-256 of the seed,
        the workspace and the count). Ids that grow keep each new index entry near the last one: with
        fully random ids every insert dirtied another index page, and a send's commit cost 60 % more."""
        prefix = ws.spec.ids[kind]
        if ws.seed is None:
            return f"{prefix}{int(self.schedule.clock.time() * 1000) & 0xFFFFFFFFFFF:011x}{os.urandom(7).hex()[:13]}"
        n = tx.execute("UPDATE sandbox_workspaces SET counter = counter + 1 WHERE id = ? RETURNING counter",
                       (ws.id,)).fetchone()[0]
        digest = hashlib.sha256(f"{ws.seed}\x00{ws.id}\x00{n}".encode()).hexdigest()
        return f"{prefix}{n & 0xFFFFFFFFFFF:011x}{digest[:13]}"

    # ------------------------------------------------------------------------- control operations

    def reset(self, ws: Workspace) -> Workspace:
        """Delete everything in the workspace (objects, history, events, scheduled steps) in one
        transaction; its seed stays, and its clock starts again (at ``start`` when seeded)."""
        self.ensure(ws)
        with self.db.transaction() as tx:
            for table in DATA_TABLES:
                tx.execute(f"DELETE FROM {table} WHERE workspace = ?", (ws.id,))
            tx.execute("UPDATE sandbox_workspaces SET counter = 0 WHERE id = ?", (ws.id,))
            self.outbox.drop_workspace(ws.id)
            self.schedule.drop_timeline(ws.id)
            self.schedule.ensure_timeline(ws.id, frozen_at=ws.start if ws.seed is not None else None)
            for listener in self._reset_listeners:
                listener(ws.id)
        return ws

    def set_seed(self, ws: Workspace, seed: str | None, start: float | None = None) -> Workspace:
        """Make the workspace deterministic with ``seed`` (None: back to the gateway's clock and random
        ids), then reset it."""
        self.ensure(ws)
        start = (start if start is not None else DETERMINISTIC_START) if seed is not None else None
        updated = Workspace(ws.id, ws.policy, seed, start)
        with self.db.transaction() as tx:
            tx.execute("UPDATE sandbox_workspaces SET seed = ?, start = ? WHERE id = ?", (seed, start, ws.id))
            self.reset(updated)
        self._cache[ws.id] = updated
        return updated

    def counts(self, ws: Workspace) -> dict[str, int]:
        """Rows per table for the workspace (the control surface's summary)."""
        conn = self.db.conn
        counts = {table.removeprefix("sandbox_"): int(conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE workspace = ?", (ws.id,)).fetchone()[0])
            for table in DATA_TABLES}
        counts["outbox"] = int(conn.execute("SELECT COUNT(*) FROM outbox WHERE workspace = ?", (ws.id,)).fetchone()[0])
        counts["scheduled"] = int(conn.execute("SELECT COUNT(*) FROM schedule WHERE timeline = ?",
                                               (ws.id,)).fetchone()[0])
        return counts
