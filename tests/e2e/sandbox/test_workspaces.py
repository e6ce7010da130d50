"""Workspaces through the real server: isolation, sharing by name, deterministic seeds, and the
resources' own behaviour (upsert matching, partial update, pagination, suppression, template review)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.sandbox.conftest import BluKeys
from tests.support.sandbox import BluetickedStandIn, SandboxClient


def test_another_workspaces_ids_are_404_and_named_workspaces_are_shared(
    blu_http: httpx.Client, blu_keys: BluKeys, standin: BluetickedStandIn
) -> None:
    standin.clear()
    mine, theirs = SandboxClient(blu_http, blu_keys.test), SandboxClient(blu_http, blu_keys.other)
    team_a, team_b = SandboxClient(blu_http, blu_keys.team_a), SandboxClient(blu_http, blu_keys.team_b)
    for client in (mine, theirs, team_a):
        client.reset()
    contact = mine.contact("+27821234567")
    template = mine.approved_template()
    msg = mine.ok("POST", "/v1/messages", {"channel": "sms", "to": {"phone": "+27821234567"}, "body": "hi"})
    for path in (f"/v1/contacts/{contact['id']}", f"/v1/templates/{template['id']}", f"/v1/messages/{msg['id']}"):
        response = theirs.call("GET", path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path
    assert theirs.ok("GET", "/v1/contacts")["data"] == []
    assert theirs.control("POST", f"/messages/{msg['id']}/events", {"status": "read"}).status_code == 404

    shared = team_a.contact("+27820001111", first_name="Team")
    assert team_b.ok("GET", f"/v1/contacts/{shared['id']}")["first_name"] == "Team"
    assert team_a.workspace()["workspace"] == team_b.workspace()["workspace"] == "blueticked/ws:team"
    assert mine.workspace()["workspace"] != theirs.workspace()["workspace"]
    assert standin.records() == []


def script(bt: SandboxClient) -> list[Any]:
    """A run of calls whose every answer a snapshot test would keep."""
    out: list[Any] = [bt.ok("POST", "/v1/contacts", {"phone": "+27800000001", "first_name": "Sam"}),
                      bt.ok("POST", "/v1/contacts", {"phone": "+27800000002"}),
                      bt.ok("POST", "/v1/templates", {"name": "hello_v1", "category": "utility",
                                                      "language": "en_US", "body": "Hi {{1}}, welcome."})]
    out.append(bt.advance(5))
    for phone in ("+27800000001", "+27800000002"):
        out.append(bt.ok("POST", "/v1/messages", {"channel": "whatsapp", "to": {"phone": phone},
                                                  "template_id": out[2]["id"], "template_variables": {"1": "Sam"}}))
    out.append(bt.advance(20))
    out.extend([bt.ok("GET", "/v1/messages"), bt.ok("GET", "/v1/contacts", limit=1), bt.events()])
    return out


def test_a_seeded_workspace_gives_the_same_ids_times_and_events_on_every_run(
    fresh: Callable[[], SandboxClient],
) -> None:
    bt = fresh()
    seeded = bt.control("PUT", "/seed", {"seed": "snapshot-1"})
    assert seeded.status_code == 200 and seeded.json()["now"] == "2026-01-01T00:00:00.000Z"
    first = script(bt)
    assert bt.control("PUT", "/seed", {"seed": "snapshot-1"}).status_code == 200  # setting it resets
    assert script(bt) == first
    assert first[0]["created_at"] == "2026-01-01T00:00:00.000Z"
    bt.control("PUT", "/seed", {"seed": "snapshot-2", "start": "2026-05-22T10:30:00Z"})
    other = script(bt)
    assert other[0]["id"] != first[0]["id"] and other[0]["created_at"] == "2026-05-22T10:30:00.000Z"
    assert bt.control("GET", "/seed").json()["seed"] == "snapshot-2"
    cleared = bt.control("DELETE", "/seed").json()
    assert cleared["seed"] is None and cleared["counts"]["contacts"] == 0


def test_contacts_upsert_update_and_paginate(fresh: Callable[[], SandboxClient]) -> None:
    bt = fresh()
    created = bt.call("POST", "/v1/contacts", {"phone": "+27821234567", "first_name": "Sam", "tags": ["vip"]})
    assert created.status_code == 201
    sam = created.json()
    assert sam["id"].startswith("con_") and sam["channels"] == {"has_whatsapp": True, "has_sms": True,
                                                                 "has_email": False}
    by_phone = bt.call("POST", "/v1/contacts", {"phone": "+27821234567", "email": "Sam@Example.com"})
    assert by_phone.status_code == 200 and by_phone.json()["id"] == sam["id"]
    by_email = bt.ok("POST", "/v1/contacts", {"email": "sam@example.com", "last_name": "Mokoena"})
    assert by_email["id"] == sam["id"] and by_email["first_name"] == "Sam" and by_email["tags"] == ["vip"]
    cleared = bt.ok("PATCH", f"/v1/contacts/{sam['id']}", {"phone": None})
    assert cleared["phone"] is None and cleared["channels"]["has_whatsapp"] is False and cleared["last_name"]
    empty = bt.call("PATCH", f"/v1/contacts/{sam['id']}", {})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "validation_failed"
    other = bt.contact("+27820000001")
    clash = bt.call("PATCH", f"/v1/contacts/{other['id']}", {"email": "sam@example.com"})
    assert clash.status_code == 422
    for n in range(3):
        bt.contact(f"+2782000010{n}")
    ids, cursor = [], None
    while True:
        page = bt.ok("GET", "/v1/contacts", limit=2, **({"cursor": cursor} if cursor else {}))
        ids += [c["id"] for c in page["data"]]
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert len(ids) == len(set(ids)) == 5 and sam["id"] == ids[-1]  # newest first
    assert bt.call("GET", "/v1/contacts", limit=101).status_code == 422
    assert bt.call("GET", "/v1/contacts", cursor="bm9wZQ").status_code == 422
    events = [e["type"] for e in bt.events()]
    assert events.count("contact.created") == 5 and events.count("contact.updated") == 3


def test_suppression_is_idempotent_and_removable(fresh: Callable[[], SandboxClient]) -> None:
    bt = fresh()
    added = bt.call("POST", "/v1/suppression", {"identifier": "+27821234567", "reason_detail": "Opted out via CRM"})
    assert added.status_code == 201
    entry = added.json()
    assert entry["id"].startswith("sup_") and (entry["channel"], entry["reason"]) == ("all", "manual")
    again = bt.call("POST", "/v1/suppression", {"identifier": "+27821234567"})
    assert again.status_code == 200 and again.json()["id"] == entry["id"]
    bt.ok("POST", "/v1/suppression", {"identifier": "a@example.com", "channel": "email"})
    assert [e["identifier"] for e in bt.ok("GET", "/v1/suppression")["data"]] == ["a@example.com", "+27821234567"]
    assert [e["identifier"] for e in bt.ok("GET", "/v1/suppression", channel="email")["data"]] == ["a@example.com"]
    assert bt.ok("DELETE", f"/v1/suppression/{entry['id']}") == {"id": entry["id"], "deleted": True}
    assert bt.call("DELETE", f"/v1/suppression/{entry['id']}").status_code == 404


def test_templates_are_refused_rejected_or_approved_by_the_rules(fresh: Callable[[], SandboxClient]) -> None:
    bt = fresh()

    def create(name: str, body: str) -> httpx.Response:
        return bt.call("POST", "/v1/templates", {"name": name, "category": "marketing", "language": "en_US",
                                                  "body": body})

    bad = create("bad_v1", "Hi {{name}}, welcome.")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "template_invalid"
    ids = {name: create(name, body).json()["id"] for name, body in [
        ("ok_v1", "Hi {{1}}, your code is {{2}}."), ("gap_v1", "Hi {{2}}, welcome."),
        ("adjacent_v1", "Hi {{1}} {{2}} welcome."), ("edge_v1", "{{1}}, welcome."),
        ("sandbox_rejected", "Hi {{1}}, welcome.")]}
    assert create("ok_v1", "Hello {{1}}.").json()["error"]["code"] == "validation_failed"  # name + language taken
    assert {bt.ok("GET", f"/v1/templates/{i}")["status"] for i in ids.values()} == {"pending"}
    bt.advance(5)
    found = {name: bt.ok("GET", f"/v1/templates/{i}") for name, i in ids.items()}
    assert {name: t["status"] for name, t in found.items()} == {
        "ok_v1": "approved", "gap_v1": "rejected", "adjacent_v1": "rejected", "edge_v1": "rejected",
        "sandbox_rejected": "rejected"}
    assert "in order" in found["gap_v1"]["rejection_reason"]
    assert found["ok_v1"]["rejection_reason"] is None
    assert [t["name"] for t in bt.ok("GET", "/v1/templates", status="approved")["data"]] == ["ok_v1"]
