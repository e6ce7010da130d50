"""The lifecycle as scheduler steps: one transition per step, each in one transaction with its history
row, event and next step; stale steps do nothing; magic numbers; forced events."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
import pytest

from proxy.sandbox.workspaces import Workspace
from proxy.store.outbox import Event
from tests.support.sandbox_world import World


async def sent(world: World, ws: Workspace, phone: str = "+27800000001") -> dict[str, Any]:
    template = world.setup(ws, phone)
    await world.advance(ws, 5)
    message: dict[str, Any] = world.call("messages.send", ws, {
        "channel": "whatsapp", "to": {"phone": phone}, "template_id": template["id"],
        "template_variables": {"1": "Sam", "2": "May"}})
    return message


def history(world: World, ws: Workspace, message_id: str) -> list[tuple[str, float]]:
    doc = world.call("messages.get", ws, path={"id": message_id})
    return [(e["status"], e["at"]) for e in doc["events"]]


def events(world: World, ws: Workspace, subject: str) -> list[dict[str, Any]]:
    return [orjson.loads(e.payload) for e in world.outbox.list(ws.id, limit=1000) if e.subject == subject]


async def test_each_step_moves_one_state_with_one_event_stamped_when_it_was_due(world: World) -> None:
    ws = world.workspace()
    msg = await sent(world, ws)
    for expected in ("sent", "delivered", "read"):
        assert await world.advance(ws, 5) == 1
        assert world.call("messages.get", ws, path={"id": msg["id"]})["status"] == expected
    assert await world.advance(ws, 60) == 0
    walk = history(world, ws, msg["id"])
    assert [s for s, _ in walk] == ["queued", "sent", "delivered", "read"]
    assert [e["event"] for e in events(world, ws, msg["id"])] == ["message.sent", "message.delivered", "message.read"]
    assert all(e["test"] is True for e in events(world, ws, msg["id"]))


async def test_advancing_past_several_steps_runs_them_in_order_at_their_own_times(world: World) -> None:
    ws = world.workspace()
    msg = await sent(world, ws)
    assert await world.advance(ws, 3600) == 3
    walk = history(world, ws, msg["id"])
    assert [s for s, _ in walk] == ["queued", "sent", "delivered", "read"]
    created = world.sandbox.workspaces.now(ws) - 3600
    assert [e["created_at"] for e in events(world, ws, msg["id"])] == [w[1] for w in walk[1:]]
    assert walk[1][1] != walk[2][1] != walk[3][1]
    assert created > 0


async def test_the_failing_number_fails_at_the_send_step(world: World) -> None:
    ws = world.workspace()
    msg = await sent(world, ws, "+27800000002")
    await world.advance(ws, 60)
    doc = world.call("messages.get", ws, path={"id": msg["id"]})
    assert (doc["status"], doc["failure_reason"]) == ("failed", "recipient_unreachable")
    [event] = events(world, ws, msg["id"])
    assert event["event"] == "message.failed" and event["data"]["failure_reason"] == "recipient_unreachable"


async def test_the_reply_number_gets_one_reply_a_step_after_read(world: World) -> None:
    ws = world.workspace()
    msg = await sent(world, ws, "+27800000003")
    await world.advance(ws, 15)
    assert world.call("messages.list", ws, direction="inbound")["data"] == []
    await world.advance(ws, 5)
    [reply] = world.call("messages.list", ws, direction="inbound")["data"]
    assert reply["in_reply_to"] == msg["id"] and reply["status"] == "received"
    await world.advance(ws, 60)
    assert len(world.call("messages.list", ws, direction="inbound")["data"]) == 1


async def test_a_step_whose_event_cannot_be_stored_changes_nothing_and_stays_due(world: World) -> None:
    ws = world.workspace()
    msg = await sent(world, ws)
    broken = True

    def listener(tx: sqlite3.Connection, event: Event) -> None:
        if broken and event.type == "message.sent":
            raise RuntimeError("webhook fan-out failed")

    world.outbox.subscribe(listener)
    assert await world.advance(ws, 5) == 1  # handed to the step, which failed and was rolled back
    assert [s for s, _ in history(world, ws, msg["id"])] == ["queued"]
    assert world.call("messages.get", ws, path={"id": msg["id"]})["status"] == "queued"
    assert events(world, ws, msg["id"]) == []
    broken = False
    assert world.scheduler.run_due() == 0  # retried a second later, not at once
    world.clock.advance(1)
    assert world.scheduler.run_due() == 1
    assert [s for s, _ in history(world, ws, msg["id"])] == ["queued", "sent"]
    assert [e["event"] for e in events(world, ws, msg["id"])] == ["message.sent"]


async def test_a_forced_event_makes_older_steps_stale(world: World) -> None:
    ws = world.workspace()
    msg = await sent(world, ws)
    row = world.sandbox.messages.by_id(ws, msg["id"])
    changed = world.sandbox.lifecycle.force(ws, row, "delivered", None)
    assert changed is not None and changed["status"] == "delivered"
    assert world.sandbox.lifecycle.force(ws, row, "read", None) is None  # `row` is an older generation
    await world.advance(ws, 60)
    assert [s for s, _ in history(world, ws, msg["id"])] == ["queued", "delivered", "read"]
    assert [e["event"] for e in events(world, ws, msg["id"])] == ["message.delivered", "message.read"]


@pytest.mark.parametrize("operation", ["reset", "drop"])
async def test_steps_of_a_reset_or_vanished_workspace_do_nothing(world: World, operation: str) -> None:
    ws = world.workspace()
    msg = await sent(world, ws)
    if operation == "reset":
        world.sandbox.workspaces.reset(ws)
        assert await world.advance(ws, 60) == 0
    else:
        with world.db.transaction() as tx:
            tx.execute("DELETE FROM sandbox_messages WHERE id = ?", (msg["id"],))
        assert await world.advance(ws, 60) == 1  # the step ran and found nothing to move
    assert world.outbox.list(ws.id, type="message.sent") == []
