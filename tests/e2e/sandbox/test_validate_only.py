"""Validate-only (``test_mode: true`` in a send body) through the real server, with a sandbox key and with
live keys: the preview, each documented refusal, and nothing created anywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.sandbox.conftest import PASSTHROUGH_LIVE, PROVIDER_CREDENTIAL, BluKeys
from tests.support.sandbox import API, BluetickedStandIn, SandboxClient, row_counts
from tests.support.servers import Gateway


def check(template_id: str, phone: str = "+27821234567", **variables: str) -> dict[str, Any]:
    return {"test_mode": True, "channel": "whatsapp", "to": {"phone": phone}, "template_id": template_id,
            "template_variables": variables or {"1": "Sam", "2": "May 2026"}}


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["ok"] is False and doc["error"]["code"] == code and doc["request_id"].startswith("req_")


def test_sandbox_validate_only_previews_and_refuses_and_writes_nothing(
    fresh: Callable[[], SandboxClient], blu_gateway: Gateway, standin: BluetickedStandIn
) -> None:
    bt = fresh()
    bt.contact("+27821234567", first_name="Sam")
    bt.contact("+27825550000", first_name="Opted Out")
    bt.ok("POST", "/v1/suppression", {"identifier": "+27825550000", "reason": "manual"})
    template = bt.approved_template()
    pending = bt.ok("POST", "/v1/templates", {"name": "not_yet_v1", "category": "utility", "language": "en_US",
                                             "body": "Hello {{1}}, welcome."})
    standin.clear()
    before = row_counts(blu_gateway.state_dir)

    ok = bt.call("POST", "/v1/messages", check(template["id"]))
    assert ok.status_code == 200, ok.text
    doc = ok.json()
    assert doc["status"] == "validated"
    assert doc["rendered_body_preview"] == "Hi Sam, your statement for May 2026 is ready."
    assert "message_id" not in doc and "id" not in doc
    refused(bt.call("POST", "/v1/messages", check(template["id"], **{"1": "Sam"})), 422, "template_variables_missing")
    refused(bt.call("POST", "/v1/messages", check(template["id"], **{"1": "Sam", "2": "May", "3": "x"})), 422,
            "template_variables_unknown")
    refused(bt.call("POST", "/v1/messages", check(pending["id"], **{"1": "Sam"})), 422, "template_not_approved")
    refused(bt.call("POST", "/v1/messages", check("tpl_missing")), 404, "not_found")
    refused(bt.call("POST", "/v1/messages", check(template["id"], phone="+27820000000")), 404, "not_found")
    refused(bt.call("POST", "/v1/messages", check(template["id"], phone="+27825550000")), 422, "recipient_suppressed")
    # The shape is still checked first: a bad body is the schema's 400, whatever the flag says.
    refused(bt.call("POST", "/v1/messages", {"test_mode": True, "channel": "fax", "to": {}}), 400, "validation_failed")

    assert row_counts(blu_gateway.state_dir) == before
    assert standin.records() == []
    assert bt.events("message.sent") == [] and bt.ok("GET", "/v1/messages")["data"] == []


@pytest.fixture
def provider_data(standin: BluetickedStandIn) -> BluetickedStandIn:
    standin.configure(
        contacts=[{"id": "con_live_1", "phone": "+27821234567", "email": None, "suppressed": False},
                  {"id": "con_live_2", "phone": "+27825550000", "email": None, "suppressed": True},
                  {"id": "con_live_3", "phone": None, "email": "sam@example.com", "suppressed": False}],
        templates={"tpl_live_ok": {"id": "tpl_live_ok", "status": "approved", "body": "Hi {{1}}, it's {{2}}."},
                   "tpl_live_pending": {"id": "tpl_live_pending", "status": "pending", "body": "Hi {{1}}."}},
    )
    standin.clear()
    return standin


@pytest.mark.parametrize("which", ["issued-live", "passthrough-live"])
def test_live_validate_only_reads_the_provider_with_gets_only(
    blu_http: httpx.Client, blu_keys: BluKeys, blu_gateway: Gateway, provider_data: BluetickedStandIn, which: str
) -> None:
    key = blu_keys.live if which == "issued-live" else PASSTHROUGH_LIVE
    headers = {"authorization": f"Bearer {key}"}
    before = row_counts(blu_gateway.state_dir)

    def post(body: dict[str, Any]) -> httpx.Response:
        return blu_http.post(API + "/v1/messages", json=body, headers=headers)

    ok = post(check("tpl_live_ok"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["rendered_body_preview"] == "Hi Sam, it's May 2026."
    assert ok.json()["contact_id"] == "con_live_1"
    assert ok.headers["x-test-mode"] == "true"
    refused(post(check("tpl_live_ok", phone="+27820000000")), 404, "not_found")
    refused(post(check("tpl_live_ok", phone="+27825550000")), 422, "recipient_suppressed")
    refused(post(check("tpl_live_pending", **{"1": "Sam"})), 422, "template_not_approved")
    refused(post(check("tpl_live_ok", **{"1": "Sam"})), 422, "template_variables_missing")
    refused(post(check("tpl_nope")), 404, "not_found")
    email = post({"test_mode": True, "channel": "email", "to": {"email": "sam@example.com"}, "subject": "Hi",
                  "body": "Your statement is ready."})
    assert email.status_code == 200 and email.json()["rendered_body_preview"] == "Your statement is ready."
    refused(post({"test_mode": True, "channel": "email", "to": {"email": "nobody@example.com"}, "subject": "Hi",
                  "body": "x"}), 404, "not_found")

    records = provider_data.records()
    assert records and {r["method"] for r in records} == {"GET"}
    assert {r["path"] for r in records} <= {"/v1/contacts", "/v1/templates/tpl_live_ok",
                                            "/v1/templates/tpl_live_pending", "/v1/templates/tpl_nope"}
    expected = PROVIDER_CREDENTIAL if which == "issued-live" else PASSTHROUGH_LIVE
    assert {dict(r["headers"])["authorization"] for r in records} == {f"Bearer {expected}"}
    assert row_counts(blu_gateway.state_dir) == before


def test_a_live_send_without_the_flag_is_forwarded(
    blu_http: httpx.Client, blu_keys: BluKeys, standin: BluetickedStandIn
) -> None:
    standin.clear()
    body = {"channel": "sms", "to": {"phone": "+27821234567"}, "body": "hi"}
    response = blu_http.post(API + "/v1/messages", json=body, headers={"authorization": f"Bearer {blu_keys.live}"})
    assert response.status_code == 201 and response.json()["data"]["live"] is True
    [record] = standin.records()
    assert (record["method"], record["path"]) == ("POST", "/v1/messages")
    assert dict(record["headers"])["authorization"] == f"Bearer {PROVIDER_CREDENTIAL}"
