"""Templates: a name and language once per workspace (review: tests/sandbox/test_lifecycle.py, e2e)."""

from __future__ import annotations

import pytest

from tests.support.sandbox_world import World


def test_template_names_are_unique_per_language(world: World) -> None:
    ws = world.workspace()
    body = {"name": "hello_v1", "category": "utility", "language": "en_US", "body": "Hi {{1}}."}
    world.call("templates.create", ws, body)
    assert world.refused("templates.create", ws, body).reason == "template_exists"
    world.call("templates.create", ws, {**body, "language": "af"})


@pytest.mark.parametrize(("name", "body", "status"), [
    ("ok_v1", "Hi {{1}}, your code is {{2}}.", "approved"),
    ("gap_v1", "Hi {{2}}.", "rejected"),
    ("edge_v1", "{{1}} is here.", "rejected"),
    ("sandbox_rejected", "Hi {{1}}.", "rejected"),
])
async def test_a_template_is_pending_then_reviewed_one_step_later(world: World, name: str, body: str,
                                                                  status: str) -> None:
    ws = world.workspace()
    created = world.call("templates.create", ws, {"name": name, "category": "utility", "language": "en_US",
                                                  "body": body})
    assert created["status"] == "pending"
    await world.advance(ws, 4.9)
    assert world.call("templates.get", ws, path={"id": created["id"]})["status"] == "pending"
    await world.advance(ws, 0.1)
    reviewed = world.call("templates.get", ws, path={"id": created["id"]})
    assert reviewed["status"] == status and (reviewed["rejection_reason"] is None) is (status == "approved")


def test_a_body_whose_placeholders_do_not_parse_is_refused_at_creation(world: World) -> None:
    error = world.refused("templates.create", world.workspace(), {"name": "x_v1", "category": "utility",
                                                                  "language": "en_US", "body": "Hi {{name}}."})
    assert (error.status, error.code) == (422, "template_invalid")
