"""Inbound messages: stored and readable, ``message.received``, a new sender becomes a contact, and an
opt-out keyword (any case, alone) suppresses the sender with reason ``stop_keyword``."""

from __future__ import annotations

import pytest

from tests.support.sandbox_world import World


@pytest.mark.parametrize(("text", "stops"), [("STOP", True), ("stop", True), ("  Unsubscribe ", True),
                                             ("please stop", False), ("Thanks!", False)])
def test_an_opt_out_keyword_suppresses_the_sender(world: World, text: str, stops: bool) -> None:
    ws = world.workspace()
    world.sandbox.workspaces.ensure(ws)
    with world.db.transaction() as tx:
        received = world.sandbox.inbound.receive(tx, ws, "+27821234567", text, "sms", world.clock.time())
    assert (received.suppression is not None) is stops
    if stops:
        assert received.suppression is not None
        assert (received.suppression["reason"], received.suppression["channel"]) == ("stop_keyword", "all")
    message = world.call("messages.get", ws, path={"id": received.message["id"]})
    assert (message["direction"], message["status"], message["body"]) == ("inbound", "received", text)
    assert [e["status"] for e in message["events"]] == ["received"]
    types = [e.type for e in world.outbox.list(ws.id)]
    assert types == ["contact.created", "message.received"]  # a sender the workspace did not know


def test_a_known_sender_is_its_contact(world: World) -> None:
    ws = world.workspace()
    contact = world.call("contacts.upsert", ws, {"phone": "+27821234567", "first_name": "Sam"})
    with world.db.transaction() as tx:
        received = world.sandbox.inbound.receive(tx, ws, "+27821234567", "hi", "whatsapp", world.clock.time())
    assert received.message["contact_id"] == contact["id"]
    assert len(world.call("contacts.list", ws)["data"]) == 1
