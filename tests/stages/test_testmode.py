"""The test-mode decision: any trigger makes a test; a flag of the wrong type is 400, never a pass."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.policy.model import Policy, PolicySet
from proxy.stages.testmode import TestMode as ModeStage
from tests.stages.harness import harness
from tests.stages.seeds import issued, passthrough, seed

LIVE = issued("live")


@pytest.mark.parametrize(
    ("body", "key", "expected_test", "trigger"),
    [
        ({}, LIVE, False, None),
        ({"test_mode": False}, LIVE, False, None),
        ({"sandbox": False, "test_mode": False}, LIVE, False, None),
        ({"test_mode": True}, LIVE, True, "body:test_mode"),
        ({"sandbox": True}, LIVE, True, "body:sandbox"),
        ({"test_mode": False, "sandbox": True}, LIVE, True, "body:sandbox"),
        ({}, issued("test", key="sk_test_gw_x"), True, "key:issued_test"),
        ({"test_mode": False}, issued("test", key="sk_test_gw_x"), True, "key:issued_test"),
        ({}, passthrough("sk_test_abc"), True, "key:prefix"),
        ({"sandbox": False}, passthrough("sk_test_abc"), True, "key:prefix"),
        ({}, passthrough("sk_live_abc"), False, None),
        ({"nested": {"test_mode": "true"}}, LIVE, False, None),  # only the declared path counts
    ],
)
async def test_decision(sent: Policy, body: dict[str, Any], key: Any, expected_test: bool, trigger: str | None) -> None:
    client, terminal = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=key, body=body))
    async with client:
        response = await client.post("/v3/contacts")
    assert response.status_code == 299
    snapshot = response.json()
    assert snapshot["test_mode"] is expected_test
    assert snapshot["trigger"] == trigger
    assert snapshot["request_id"].startswith("req_test_" if expected_test else "req_")
    assert terminal.calls == 1


@pytest.mark.parametrize("value", ["true", "false", 1, 0, None, "yes", [], {}, [True], 1.0])
@pytest.mark.parametrize("flag", ["test_mode", "sandbox"])
async def test_wrong_type_flag_is_400_and_never_passes(sent: Policy, flag: str, value: Any) -> None:
    client, terminal = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=LIVE, body={flag: value}))
    async with client:
        response = await client.post("/v3/contacts")
    assert response.status_code == 400
    doc = response.json()
    assert doc["success"] is False
    assert doc["error"]["code"] == "VALIDATION_005"
    assert flag in doc["error"]["details"]
    assert terminal.calls == 0


@pytest.mark.parametrize("key", [issued("test", key="sk_test_gw_x"), passthrough("sk_test_abc")])
async def test_a_refused_request_with_a_test_key_is_answered_as_a_test(sent: Policy, key: Any) -> None:
    client, terminal = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=key, body={"test_mode": "true"}))
    async with client:
        response = await client.post("/v3/contacts")
    assert response.status_code == 400
    assert response.headers["x-test-mode"] == "true"
    assert response.headers["x-request-id"].startswith("req_test_")
    assert response.json()["meta"]["request_id"] == response.headers["x-request-id"]
    assert terminal.calls == 0


async def test_a_refused_request_with_a_live_key_keeps_its_live_id(sent: Policy) -> None:
    client, _ = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=LIVE, body={"sandbox": 1}))
    async with client:
        response = await client.post("/v3/contacts")
    assert response.status_code == 400
    assert "x-test-mode" not in response.headers
    assert not response.headers["x-request-id"].startswith("req_test_")


MISPLACED = [
    ({"x-test-mode": "true"}, ""),
    ({}, "test_mode=true"),
    ({}, "sandbox=1"),
    ({"x-sandbox": "1"}, ""),
    # Near-miss spellings: any case, '_' or '-', '[]' or nested in a query name (issue #10, item 7).
    ({"x_test_mode": "true"}, ""),
    ({"X-Test_Mode": "true"}, ""),
    ({"X-Sandbox-Mode": "true"}, ""),
    ({"TestMode": "1"}, ""),
    ({}, "Sandbox=true"),
    ({}, "sandbox[]=true"),
    ({}, "page=2&TEST-MODE=1"),
    ({}, "options%5Bsandbox%5D=true"),
    ({}, "options.test_mode=true"),
]


@pytest.mark.parametrize(("headers", "query"), MISPLACED)
async def test_misplaced_flag_is_refused(sent: Policy, headers: dict[str, str], query: str) -> None:
    client, terminal = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=LIVE, body={}))
    async with client:
        response = await client.post("/v3/contacts" + (f"?{query}" if query else ""), headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_006"
    assert terminal.calls == 0


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"x-sandbox-id": "1"}, ""), ({"x-testing": "1"}, ""), ({}, "sandboxes=1"), ({}, "mode=test&page=2")],
)
async def test_names_that_only_resemble_a_flag_pass(sent: Policy, headers: dict[str, str], query: str) -> None:
    client, terminal = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=LIVE, body={}))
    async with client:
        response = await client.post("/v3/contacts" + (f"?{query}" if query else ""), headers=headers)
    assert response.status_code == 299
    assert terminal.calls == 1


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"x-sandbox-mode": "true"}, ""), ({"X-Test-Mode": "true"}, ""), ({"Enable": "true"}, ""),
     ({}, "sandbox_mode=true"), ({}, "mail_settings[sandbox_mode][enable]=true"), ({}, "Enable=1")],
)
async def test_sendgrid_refuses_misplaced_flags_too(
    policy_set: PolicySet, headers: dict[str, str], query: str
) -> None:
    sendgrid = policy_set.by_name("sendgrid")
    assert sendgrid is not None
    client, terminal = harness(ModeStage, seed(sendgrid, "POST", "/v3/mail/send", key=LIVE, body={}))
    async with client:
        response = await client.post("/v3/mail/send" + (f"?{query}" if query else ""), headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].endswith("set the test flag in the JSON body. Nothing was sent.")
    assert terminal.calls == 0


async def test_reads_without_body_are_decided_by_key(sent: Policy) -> None:
    client, _ = harness(ModeStage, seed(sent, "GET", "/v3/me", key=issued("test", key="sk_test_gw_q")))
    async with client:
        response = await client.get("/v3/me")
    assert response.json()["test_mode"] is True
