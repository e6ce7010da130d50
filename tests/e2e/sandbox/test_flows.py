"""The seed's flows through the real server, with the workspace clock advanced instead of waiting.

Each test ends by checking what reached the Blueticked stand-in: for a sandbox key, at most the one
read-only verification of a pass-through key (``GET /v1/contacts?limit=1``), nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.sandbox import BluetickedStandIn, SandboxClient

FAILS, REPLIES, DELIVERS = "+27800000002", "+27800000003", "+27800000001"


def only_verification(standin: BluetickedStandIn) -> None:
    records = standin.records()
    assert all((r["method"], r["path"], r["query"]) == ("GET", "/v1/contacts", "limit=1") for r in records), records


def send(sandbox: SandboxClient, phone: str, template: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"channel": "whatsapp", "to": {"phone": phone}, "template_id": template["id"],
            "template_variables": {"1": "Sam", "2": "May 2026"}, **extra}
    message: dict[str, Any] = sandbox.ok("POST", "/v1/messages", body, expect=202)
    return message


def test_failure_ts_flow_fails_one_step_later_with_one_failed_event(
    fresh: Callable[[], SandboxClient], standin: BluetickedStandIn
) -> None:
    standin.clear()
    bt = fresh()
    bt.contact(FAILS, first_name="Always Fails")
    template = bt.approved_template()
    msg = send(bt, FAILS, template)
    assert msg["status"] == "queued" and msg["message_id"].startswith("msg_")
    bt.advance(5)
    failed = bt.ok("GET", f"/v1/messages/{msg['message_id']}")
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "recipient_unreachable"
    assert [e["status"] for e in failed["events"]] == ["queued", "failed"]
    [event] = bt.events("message.failed")
    assert event["subject"] == msg["message_id"]
    assert event["payload"]["test"] is True
    assert event["payload"]["event"] == "message.failed"
    assert event["payload"]["id"] == event["id"] and event["id"].startswith("evt_")
    assert event["payload"]["data"]["failure_reason"] == "recipient_unreachable"
    assert [e["type"] for e in bt.events() if e["subject"] == msg["message_id"]] == ["message.failed"]
    bt.advance(60)  # a failed message goes nowhere
    assert bt.ok("GET", f"/v1/messages/{msg['message_id']}")["status"] == "failed"
    only_verification(standin)


def test_a_normal_number_walks_all_four_states_one_event_each_in_order(
    fresh: Callable[[], SandboxClient], standin: BluetickedStandIn
) -> None:
    standin.clear()
    bt = fresh()
    bt.contact(DELIVERS)
    msg = send(bt, DELIVERS, bt.approved_template())
    seen = [msg["status"]]
    for _ in range(3):
        bt.advance(5)
        seen.append(bt.ok("GET", f"/v1/messages/{msg['id']}")["status"])
    assert seen == ["queued", "sent", "delivered", "read"]
    final = bt.ok("GET", f"/v1/messages/{msg['id']}")
    assert [e["status"] for e in final["events"]] == seen
    events = [e for e in bt.events() if e["subject"] == msg["id"]]
    assert [e["type"] for e in events] == ["message.sent", "message.delivered", "message.read"]
    assert [e["payload"]["data"]["status"] for e in events] == ["sent", "delivered", "read"]
    assert all(e["payload"]["test"] is True for e in events)
    assert len({e["id"] for e in events}) == 3
    bt.advance(60)
    assert len([e for e in bt.events() if e["subject"] == msg["id"]]) == 3  # nothing after read
    only_verification(standin)


def test_the_reply_number_delivers_then_an_inbound_reply_arrives(
    fresh: Callable[[], SandboxClient], standin: BluetickedStandIn
) -> None:
    standin.clear()
    bt = fresh()
    bt.contact(REPLIES)
    msg = send(bt, REPLIES, bt.approved_template())
    bt.advance(15)
    assert bt.ok("GET", f"/v1/messages/{msg['id']}")["status"] == "read"
    assert bt.events("message.received") == []
    bt.advance(5)
    [received] = bt.events("message.received")
    reply_id = received["subject"]
    reply = bt.ok("GET", f"/v1/messages/{reply_id}")
    assert reply["direction"] == "inbound" and reply["status"] == "received"
    assert reply["in_reply_to"] == msg["id"] and reply["from"] == {"phone": REPLIES} and reply["body"]
    assert received["payload"]["data"]["id"] == reply_id and received["payload"]["test"] is True
    inbound = bt.ok("GET", "/v1/messages", direction="inbound")["data"]
    assert [m["id"] for m in inbound] == [reply_id]
    only_verification(standin)


def test_a_stop_reply_suppresses_the_number(fresh: Callable[[], SandboxClient], standin: BluetickedStandIn) -> None:
    standin.clear()
    bt = fresh()
    bt.contact("+27821234567", first_name="Sam")
    response = bt.control("POST", "/inbound", {"from": "+27821234567", "text": "stop", "channel": "whatsapp"})
    assert response.status_code == 201, response.text
    assert response.json()["suppression"]["reason"] == "stop_keyword"
    [entry] = bt.ok("GET", "/v1/suppression")["data"]
    assert (entry["identifier"], entry["reason"], entry["channel"]) == ("+27821234567", "stop_keyword", "all")
    assert bt.ok("GET", "/v1/contacts")["data"][0]["suppressed"] is True
    refused = bt.call("POST", "/v1/messages", {"channel": "sms", "to": {"phone": "+27821234567"}, "body": "hi"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "recipient_suppressed"
    # Any other text is just a message; an unknown sender becomes a contact.
    other = bt.control("POST", "/inbound", {"from": "+27829999999", "text": "hello"}).json()
    assert other["suppression"] is None and other["message"]["body"] == "hello"
    assert {c["phone"] for c in bt.ok("GET", "/v1/contacts")["data"]} == {"+27821234567", "+27829999999"}
    only_verification(standin)


def test_forcing_events_moves_the_message_and_stale_steps_do_nothing(
    fresh: Callable[[], SandboxClient], standin: BluetickedStandIn
) -> None:
    standin.clear()
    bt = fresh()
    bt.contact(DELIVERS)
    template = bt.approved_template()
    first, second = send(bt, DELIVERS, template), send(bt, DELIVERS, template)
    forced = bt.control("POST", f"/messages/{first['id']}/events", {"status": "failed", "reason": "blocked_by_user"})
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "failed" and forced.json()["failure_reason"] == "blocked_by_user"
    read = bt.control("POST", f"/messages/{second['id']}/events", {"status": "read"}).json()
    assert read["status"] == "read"
    bt.advance(30)  # the steps scheduled at the send find another generation and do nothing
    assert [e["status"] for e in bt.ok("GET", f"/v1/messages/{first['id']}")["events"]] == ["queued", "failed"]
    assert [e["status"] for e in bt.ok("GET", f"/v1/messages/{second['id']}")["events"]] == ["queued", "read"]
    assert [e["type"] for e in bt.events() if e["subject"] in (first["id"], second["id"])] == \
        ["message.failed", "message.read"]
    again = bt.control("POST", f"/messages/{second['id']}/events", {"status": "read"})
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    unknown = bt.control("POST", "/messages/msg_nope/events", {"status": "read"})
    assert unknown.status_code == 404
    assert bt.control("POST", f"/messages/{first['id']}/events", {"status": "queued"}).status_code == 400
    only_verification(standin)


def test_reset_deletes_everything_in_the_workspace(issued: SandboxClient, standin: BluetickedStandIn) -> None:
    standin.clear()
    issued.contact(DELIVERS)
    msg = send(issued, DELIVERS, issued.approved_template())
    assert issued.workspace()["counts"]["messages"] == 1
    response = issued.control("POST", "/reset")
    assert response.status_code == 200 and response.json()["reset"] is True
    assert all(count == 0 for count in issued.workspace()["counts"].values()), issued.workspace()
    assert issued.call("GET", f"/v1/messages/{msg['id']}").status_code == 404
    assert issued.ok("GET", "/v1/contacts")["data"] == []
    assert standin.records() == []  # an issued key is never shown to the provider at all


def test_a_retried_send_with_an_idempotency_key_is_one_message(fresh: Callable[[], SandboxClient]) -> None:
    bt = fresh()
    bt.contact(DELIVERS)
    body = {"channel": "sms", "to": {"phone": DELIVERS}, "body": "Your code is 123456"}
    headers = {**bt.headers, "idempotency-key": "order-1001"}
    first = bt.http.post("/blueticked/v1/messages", json=body, headers=headers)
    again = bt.http.post("/blueticked/v1/messages", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert [m["id"] for m in bt.ok("GET", "/v1/messages")["data"]] == [first.json()["id"]]
