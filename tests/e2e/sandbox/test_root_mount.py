"""At the root prefix, where Sent, SendGrid and Blueticked are all mounted, a ``blu_…`` key reaches the
Blueticked pack: a sandbox key its workspace, a live key Blueticked itself (policies/README.md, "Routing")."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.e2e.sandbox.conftest import PROVIDER_CREDENTIAL, BluKeys
from tests.support.sandbox import BluetickedStandIn, SandboxClient


def test_a_sandbox_key_at_the_root_is_answered_by_its_workspace(
    blu_http: httpx.Client, blu_keys: BluKeys, fresh: Callable[[], SandboxClient], standin: BluetickedStandIn
) -> None:
    standin.clear()
    issued = SandboxClient(blu_http, blu_keys.test, prefix="")
    issued.reset()
    contact = issued.ok("POST", "/v1/contacts", {"phone": "+27821234567"})
    sent = issued.ok("POST", "/v1/messages", {"channel": "sms", "to": {"phone": "+27821234567"}, "body": "hi"},
                     expect=202)
    assert sent["contact_id"] == contact["id"]
    via_prefix = SandboxClient(blu_http, blu_keys.test)  # the same workspace under /blueticked
    assert via_prefix.ok("GET", f"/v1/messages/{sent['id']}")["status"] == "queued"
    assert standin.records() == []
    passthrough = fresh()
    root = SandboxClient(blu_http, passthrough.key, prefix="")
    assert root.ok("GET", "/v1/contacts")["data"] == []
    assert [(r["method"], r["path"]) for r in standin.records()] == [("GET", "/v1/contacts")]  # its verification


def test_a_live_key_at_the_root_reaches_blueticked_and_no_key_gets_its_401(
    blu_http: httpx.Client, blu_keys: BluKeys, standin: BluetickedStandIn
) -> None:
    standin.clear()
    body = {"channel": "sms", "to": {"phone": "+27821234567"}, "body": "hi"}
    live = blu_http.post("/v1/messages", json=body, headers={"authorization": f"Bearer {blu_keys.live}"})
    assert live.status_code == 201 and live.json()["data"]["live"] is True
    [record] = standin.records()
    assert (record["method"], record["path"]) == ("POST", "/v1/messages")
    assert dict(record["headers"])["authorization"] == f"Bearer {PROVIDER_CREDENTIAL}"
    anonymous = blu_http.post("/v1/messages", json=body)
    assert anonymous.status_code == 401
    assert anonymous.json()["ok"] is False and anonymous.json()["error"]["code"] == "unauthorized"
    assert len(standin.records()) == 1
