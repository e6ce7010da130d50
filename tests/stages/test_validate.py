"""Validation: test requests always, live requests only when the policy asks; all findings at once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from proxy.policy.model import Policy
from proxy.stages.validate import Validate
from tests.stages.harness import harness
from tests.stages.seeds import issued, seed


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/v3/messages", {"phone_number": "12345", "template_id": "t"}, {"phone_number"}),
        ("/v3/messages", {"phone_number": "+1234567890"}, {"template_id"}),
        ("/v3/messages", {"to": []}, {"to", "text"}),
        ("/v3/messages", {"to": ["+15555555555", "555", "+0123"], "text": "hi"}, {"to[1]", "to[2]"}),
        ("/v3/messages", {"to": ["+15555555555"], "text": "hi", "channel": ["pigeon"]}, {"channel[0]"}),
        ("/v3/messages", {"to": ["+15555555555"], "template": {}}, {"template"}),
        ("/v3/contacts", {}, {"phone_number"}),
        ("/v3/contacts", {"phone_number": "+1 555 555"}, {"phone_number"}),
        ("/v3/webhooks", {"endpoint_url": "not a url", "retry_count": 99}, {"endpoint_url", "retry_count"}),
        ("/v3/users", {"email": "nobody"}, {"email"}),
    ],
)
async def test_test_requests_get_every_finding(sent: Policy, path: str, body: dict[str, Any], fields: set[str]) -> None:
    client, terminal = harness(Validate, seed(sent, "POST", path, key=issued("live"), body=body, test_mode=True))
    async with client:
        response = await client.post(path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_001"
    assert set(error["details"]) == fields
    assert all(isinstance(m, str) and m for msgs in error["details"].values() for m in msgs)
    assert terminal.calls == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v3/messages", {"phone_number": "+1234567890", "template_id": "welcome", "variables": {"name": "x"}}),
        ("/v3/messages", {"to": ["+15555555555"], "text": "hi", "channel": ["sms", "whatsapp"]}),
        ("/v3/messages", {"to": ["+15555555555"], "template": {"name": "welcome", "parameters": {"a": "1"}}}),
        ("/v3/contacts", {"phone_number": "+15555555555"}),
        ("/v3/webhooks", {"endpoint_url": "https://example.com/hook", "event_types": ["message.sent"]}),
    ],
)
async def test_valid_bodies_pass(sent: Policy, path: str, body: dict[str, Any]) -> None:
    client, terminal = harness(Validate, seed(sent, "POST", path, key=issued("live"), body=body, test_mode=True))
    async with client:
        response = await client.post(path)
    assert response.status_code == 299
    assert terminal.calls == 1


async def test_live_requests_are_left_to_the_provider_unless_asked(sent: Policy) -> None:
    invalid = {"phone_number": "nope"}
    client, _ = harness(Validate, seed(sent, "POST", "/v3/contacts", key=issued("live"), body=invalid, test_mode=False))
    async with client:
        assert (await client.post("/v3/contacts")).status_code == 299
    strict = replace(sent, validate_live=True)
    client, _ = harness(Validate, seed(strict, "POST", "/v3/contacts", key=issued("live"), body=invalid,
                                       test_mode=False))
    async with client:
        assert (await client.post("/v3/contacts")).status_code == 400
