"""The test-mode decision: any trigger makes a test; a flag of the wrong type is 400, never a pass."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.policy.model import Policy
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


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"x-test-mode": "true"}, ""), ({}, "test_mode=true"), ({}, "sandbox=1"), ({"x-sandbox": "1"}, "")],
)
async def test_misplaced_flag_is_refused(sent: Policy, headers: dict[str, str], query: str) -> None:
    client, terminal = harness(ModeStage, seed(sent, "POST", "/v3/contacts", key=LIVE, body={}, headers=headers))
    async with client:
        response = await client.post("/v3/contacts" + (f"?{query}" if query else ""))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_006"
    assert terminal.calls == 0


async def test_reads_without_body_are_decided_by_key(sent: Policy) -> None:
    client, _ = harness(ModeStage, seed(sent, "GET", "/v3/me", key=issued("test", key="sk_test_gw_q")))
    async with client:
        response = await client.get("/v3/me")
    assert response.json()["test_mode"] is True
