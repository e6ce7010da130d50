"""Contacts: upsert matching by phone or email, and the suppressed flag from the suppression list."""

from __future__ import annotations

from tests.support.sandbox_world import World


def test_upsert_matches_by_phone_then_email_and_refuses_a_split_match(world: World) -> None:
    ws = world.workspace()
    a = world.call("contacts.upsert", ws, {"phone": "+27821234567"})
    b = world.call("contacts.upsert", ws, {"email": "B@Example.com", "tags": ["vip"]})
    assert b["email"] == "b@example.com"
    assert world.call("contacts.upsert", ws, {"phone": "+27821234567", "first_name": "Sam"})["id"] == a["id"]
    error = world.refused("contacts.upsert", ws, {"phone": "+27821234567", "email": "b@example.com"})
    assert (error.status, error.code, error.reason) == (422, "validation_failed", "contact_conflict")
    assert world.call("contacts.get", ws, path={"id": b["id"]})["tags"] == ["vip"]
    missing = world.refused("contacts.get", ws, path={"id": "con_missing"})
    assert (missing.status, missing.code) == (404, "not_found")


def test_suppressed_follows_the_list(world: World) -> None:
    ws = world.workspace()
    contact = world.call("contacts.upsert", ws, {"phone": "+27821234567", "email": "sam@example.com"})
    world.call("suppression.add", ws, {"identifier": "SAM@example.com", "channel": "email"})
    assert world.call("contacts.get", ws, path={"id": contact["id"]})["suppressed"] is True
    assert world.sandbox.suppressions.blocking(ws, "sam@example.com", "email") is not None
    assert world.sandbox.suppressions.blocking(ws, "sam@example.com", "sms") is None
