"""The outbox: events appended with their listeners' work in one transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy.store.database import Database
from proxy.store.outbox import Event, Outbox


def event(n: int, workspace: str = "ws_a") -> Event:
    return Event(f"evt_{n}", workspace, "message.sent", "msg_1", 1000.0 + n, b'{"event":"message.sent","n":%d}' % n)


def test_events_are_kept_in_order_per_workspace_with_their_exact_bytes(tmp_path: Path) -> None:
    outbox = Outbox(Database(tmp_path / "s.db"))
    for n in range(3):
        outbox.append(event(n))
    outbox.append(event(9, "ws_b"))
    assert [e.id for e in outbox.list("ws_a")] == ["evt_0", "evt_1", "evt_2"]
    assert outbox.get("evt_1") == outbox.list("ws_a")[1]
    assert outbox.list("ws_a")[2].payload == b'{"event":"message.sent","n":2}'
    assert outbox.count("ws_b") == 1
    outbox.drop_workspace("ws_a")
    assert outbox.count() == 1


def test_a_listener_runs_in_the_append_transaction(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    db.migrate("fanout", ["CREATE TABLE fanout (event TEXT)"])
    outbox = Outbox(db)

    def fan_out(tx: sqlite3.Connection, e: Event) -> None:
        tx.execute("INSERT INTO fanout VALUES (?)", (e.id,))
        if e.id == "evt_bad":
            raise RuntimeError("listener failed")

    outbox.subscribe(fan_out)
    outbox.append(event(1))
    with pytest.raises(RuntimeError):
        outbox.append(Event("evt_bad", "ws_a", "message.sent", None, 0.0, b"{}"))
    assert [r[0] for r in db.conn.execute("SELECT event FROM fanout")] == ["evt_1"]
    assert outbox.get("evt_bad") is None  # no event without its fan-out, and no fan-out without its event
