"""Sends: each documented refusal (status, code), documents, validate-only writing nothing, channels."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sandbox_world import World


def template_send(template: dict[str, Any], phone: str = "+27800000001", **extra: Any) -> dict[str, Any]:
    return {"channel": "whatsapp", "to": {"phone": phone}, "template_id": template["id"],
            "template_variables": {"1": "Sam", "2": "May"}, **extra}


@pytest.mark.parametrize(("change", "status", "code", "reason"), [
    (lambda b, t: {**b, "to": {"phone": "+27820000000"}}, 404, "not_found", "contact_not_found"),
    (lambda b, t: {**b, "template_id": "tpl_missing"}, 404, "not_found", "template_not_found"),
    (lambda b, t: {**b, "template_variables": {"1": "Sam"}}, 422, "template_variables_missing", None),
    (lambda b, t: {**b, "template_variables": {"1": "a", "2": "b", "9": "c"}}, 422, "template_variables_unknown",
     None),
    (lambda b, t: {**b, "document": {"url": "https://x/y.pdf", "filename": "y.pdf"}}, 422,
     "document_not_applicable", None),
    (lambda b, t: {"channel": "email", "to": {"phone": "+27800000001"}, "subject": "s", "body": "b"}, 422,
     "channel_unavailable", "contact_no_channel"),
])
async def test_a_send_is_refused_for_each_documented_reason(
    world: World, change: Any, status: int, code: str, reason: str | None
) -> None:
    ws = world.workspace()
    template = world.setup(ws)
    await world.advance(ws, 5)
    error = world.refused("messages.send", ws, change(template_send(template), template))
    assert (error.status, error.code) == (status, code)
    assert error.reason == (reason or code)


def test_an_unapproved_template_cannot_send(world: World) -> None:
    ws = world.workspace()
    template = world.setup(ws)
    error = world.refused("messages.send", ws, template_send(template))
    assert (error.status, error.code) == (422, "template_not_approved")


async def test_a_document_header_template_needs_a_document(world: World) -> None:
    ws = world.workspace()
    world.call("contacts.upsert", ws, {"phone": "+27800000001"})
    template = world.call("templates.create", ws, {"name": "statement_v1", "category": "utility",
                                                   "language": "en_US", "body": "Hi {{1}}, here it is.",
                                                   "header_format": "document"})
    await world.advance(ws, 5)
    body = {"channel": "whatsapp", "to": {"phone": "+27800000001"}, "template_id": template["id"],
            "template_variables": {"1": "Sam"}}
    assert world.refused("messages.send", ws, body).code == "document_required"
    sent = world.call("messages.send", ws, {**body, "document": {"url": "https://f/s.pdf", "filename": "s.pdf"}})
    assert sent["status"] == "queued" and sent["body"] == "Hi Sam, here it is."


async def test_validate_only_checks_the_same_and_writes_nothing(world: World) -> None:
    ws = world.workspace()
    template = world.setup(ws)
    await world.advance(ws, 5)
    before = world.rows()
    ok = world.call("messages.send", ws, template_send(template, test_mode=True))
    assert ok["status"] == "validated" and ok["rendered_body_preview"] == "Hi Sam, your statement for May is ready."
    assert world.refused("messages.send", ws, template_send(template, phone="+27820000000", test_mode=True)).status \
        == 404
    assert world.rows() == before


async def test_sms_and_email_sends_carry_their_own_text(world: World) -> None:
    ws = world.workspace()
    world.call("contacts.upsert", ws, {"phone": "+27821234567", "email": "sam@example.com"})
    sms = world.call("messages.send", ws, {"channel": "sms", "to": {"phone": "+27821234567"}, "body": "code 1"})
    mail = world.call("messages.send", ws, {"channel": "email", "to": {"email": "sam@example.com"},
                                            "subject": "Hi", "html": "<p>Hi</p>"})
    assert (sms["body"], sms["to"]) == ("code 1", {"phone": "+27821234567"})
    assert (mail["body"], mail["to"], mail["subject"]) == ("<p>Hi</p>", {"email": "sam@example.com"}, "Hi")
    listed = world.call("messages.list", ws, channel="email")["data"]
    assert [m["id"] for m in listed] == [mail["id"]]
