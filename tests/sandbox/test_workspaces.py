"""Workspaces: ids by key or name, nothing written by reads, seeded ids and a frozen clock, reset."""

from __future__ import annotations

from proxy.clock import iso_ms
from proxy.sandbox.workspaces import DETERMINISTIC_START, decode_cursor, encode_cursor, workspace_id
from tests.support.sandbox_world import World


def test_a_key_has_its_own_workspace_unless_it_names_one() -> None:
    assert workspace_id("blueticked", "key_a", None) == "blueticked/key_a"
    assert workspace_id("blueticked", "key_a", "team") == workspace_id("blueticked", "key_b", "team")
    assert workspace_id("blueticked", "key_a", "team") != workspace_id("sent", "key_a", "team")


def test_reads_write_nothing_and_the_first_write_creates_the_workspace(world: World) -> None:
    before = world.rows()
    ws = world.workspace()
    assert world.call("contacts.list", ws)["data"] == []
    assert world.sandbox.workspaces.now(ws) == world.clock.time()
    assert world.rows() == before
    world.call("contacts.upsert", ws, {"phone": "+27821234567"})
    assert world.db.conn.execute("SELECT policy FROM sandbox_workspaces WHERE id = ?", (ws.id,)).fetchone()[0] == \
        "blueticked"
    assert world.sandbox.parts.schedule.timeline(ws.id) is not None


def test_random_ids_have_the_prefix_and_never_repeat(world: World) -> None:
    ws = world.workspace()
    world.sandbox.workspaces.ensure(ws)
    with world.db.transaction() as tx:
        ids = {world.sandbox.workspaces.new_id(tx, ws, "message") for _ in range(500)}
    assert len(ids) == 500 and all(i.startswith("msg_") and len(i) == 28 for i in ids)


def test_a_seed_gives_the_same_ids_each_run_and_other_seeds_or_workspaces_others(world: World) -> None:
    workspaces = world.sandbox.workspaces

    def run(ws_key: str, seed: str) -> list[str]:
        ws = workspaces.set_seed(world.workspace(ws_key), seed)
        with world.db.transaction() as tx:
            return [workspaces.new_id(tx, ws, kind) for kind in ("contact", "message", "event")]

    first = run("key_a", "s1")
    assert run("key_a", "s1") == first  # setting the seed again starts over
    assert run("key_a", "s2") != first
    assert run("key_b", "s1") != first
    assert [i[:4] for i in first] == ["con_", "msg_", "evt_"]


def test_a_seeded_clock_is_frozen_at_its_start_and_moves_only_when_advanced(world: World) -> None:
    ws = world.sandbox.workspaces.set_seed(world.workspace(), "s", start=DETERMINISTIC_START + 60)
    world.clock.advance(3600)
    assert world.sandbox.workspaces.now(ws) == DETERMINISTIC_START + 60
    contact = world.call("contacts.upsert", ws, {"phone": "+27821234567"})
    assert contact["created_at"] == iso_ms(DETERMINISTIC_START + 60)


async def test_reset_deletes_everything_of_one_workspace_only(world: World) -> None:
    mine, other = world.workspace("key_a"), world.workspace("key_b")
    for ws in (mine, other):
        template = world.setup(ws)
        await world.advance(ws, 5)
        world.call("messages.send", ws, {"channel": "whatsapp", "to": {"phone": "+27800000001"},
                                         "template_id": template["id"],
                                         "template_variables": {"1": "a", "2": "b"}})
    world.sandbox.workspaces.reset(mine)
    assert set(world.sandbox.workspaces.counts(mine).values()) == {0}
    assert world.sandbox.workspaces.counts(other)["messages"] == 1
    assert world.sandbox.workspaces.counts(other)["scheduled"] == 1
    assert world.sandbox.parts.schedule.timeline(mine.id) is not None  # its clock goes on


def test_cursors_round_trip_and_garbage_is_none() -> None:
    assert decode_cursor(encode_cursor("con_abc")) == "con_abc"
    assert decode_cursor("!!!") is None


def test_reset_tells_its_listeners_in_its_transaction(world: World) -> None:
    heard: list[tuple[str, bool]] = []
    world.sandbox.workspaces.on_reset(lambda wid: heard.append((wid, world.db.in_transaction)))
    ws = world.workspace()
    world.sandbox.workspaces.reset(ws)
    assert heard == [(ws.id, True)]
