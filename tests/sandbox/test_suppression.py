"""The suppression list: idempotent adds, removal, newest-first pages and the query errors."""

from __future__ import annotations

from proxy.sandbox.parts import Call
from tests.support.sandbox_world import World


def test_suppression_remove_and_pages(world: World) -> None:
    ws = world.workspace()
    ids = [world.call("suppression.add", ws, {"identifier": f"+2782000000{n}"})["id"] for n in range(5)]
    first = world.call("suppression.list", ws, limit="2")
    second = world.call("suppression.list", ws, limit="2", cursor=first["next_cursor"])
    third = world.call("suppression.list", ws, limit="2", cursor=second["next_cursor"])
    assert [e["id"] for e in first["data"] + second["data"] + third["data"]] == ids[::-1]
    assert third["has_more"] is False and third["next_cursor"] is None
    assert world.call("suppression.remove", ws, path={"id": ids[0]}) == {"id": ids[0], "deleted": True}
    assert world.refused("suppression.remove", ws, path={"id": ids[0]}).status == 404
    for bad in ({"limit": "0"}, {"limit": "x"}, {"cursor": "not-ours"}):
        assert world.refused("suppression.list", ws, **bad).reason == "bad_query"


def test_adding_an_identifier_again_on_its_channel_returns_the_entry(world: World) -> None:
    ws = world.workspace()
    first = world.sandbox.handle("suppression.add", ws, _call({"identifier": "A@Example.com", "channel": "email"}))
    again = world.sandbox.handle("suppression.add", ws, _call({"identifier": "a@example.com", "channel": "email"}))
    other = world.sandbox.handle("suppression.add", ws, _call({"identifier": "a@example.com"}))
    assert (first[0], again[0], other[0]) == (201, 200, 201)
    assert first[1]["id"] == again[1]["id"] != other[1]["id"] and first[1]["identifier"] == "a@example.com"


def _call(body: dict[str, str]) -> Call:
    return Call(body, {}, {})
