"""Short-circuit: a test request is answered here and never reaches the next app."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from proxy.policy.model import Policy
from proxy.policy.paths import PathTable
from proxy.stages.shortcircuit import ShortCircuit
from tests.stages.harness import harness
from tests.stages.seeds import issued, passthrough, seed

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def stage() -> Any:
    return ShortCircuit


async def test_seed_message_shape(sent: Policy) -> None:
    body = {"test_mode": True, "phone_number": "+1234567890", "template_id": "tpl", "variables": {"a": "b"}}
    client, terminal = harness(stage(), seed(sent, "POST", "/v3/messages", key=issued("live"), body=body,
                                             test_mode=True))
    async with client:
        response = await client.post("/v3/messages")
    assert response.status_code == 201
    assert response.headers["x-test-mode"] == "true"
    doc = response.json()
    assert doc["meta"]["request_id"] == response.headers["x-request-id"]
    assert doc["success"] is True and doc["error"] is None
    data = doc["data"]
    assert UUID.match(data["id"])
    assert (data["phone"], data["template_id"], data["channel"], data["status"]) == ("+1234567890", "tpl", "sms",
                                                                                       "pending")
    assert isinstance(data["price"], float)
    assert TIMESTAMP.match(data["created_at"]) and TIMESTAMP.match(doc["meta"]["timestamp"])
    assert terminal.calls == 0


async def test_current_message_shape_one_recipient_per_to(sent: Policy) -> None:
    body = {"to": ["+15555555555", "+15555555556", "+15555555557"], "text": "hi", "channel": ["whatsapp"]}
    client, _ = harness(stage(), seed(sent, "POST", "/v3/messages", key=issued("test"), body=body, test_mode=True))
    async with client:
        response = await client.post("/v3/messages")
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["status"] == "QUEUED"
    assert [r["to"] for r in data["recipients"]] == body["to"]
    assert len({r["message_id"] for r in data["recipients"]}) == 3
    assert {r["channel"] for r in data["recipients"]} == {"whatsapp"}


async def test_auto_channel_reads_as_null(sent: Policy) -> None:
    body = {"to": ["+15555555555"], "template": {"id": "t1", "name": "welcome"}, "channel": ["sent"]}
    client, _ = harness(stage(), seed(sent, "POST", "/v3/messages", key=issued("test"), body=body, test_mode=True))
    async with client:
        data = (await client.post("/v3/messages")).json()["data"]
    assert data["recipients"][0]["channel"] is None
    assert (data["template_id"], data["template_name"]) == ("t1", "welcome")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("DELETE", "/v3/contacts/c1", 204), ("DELETE", "/v3/templates/t1", 204), ("DELETE", "/v3/webhooks/w1", 204)],
)
async def test_deletes_are_204_without_body(sent: Policy, method: str, path: str, status: int) -> None:
    client, terminal = harness(stage(), seed(sent, method, path, key=issued("test"), body={}, test_mode=True))
    async with client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.content == b""
    assert terminal.calls == 0


async def test_webhook_secrets_are_fresh(sent: Policy) -> None:
    body = {"endpoint_url": "https://example.com/h"}
    client, _ = harness(stage(), seed(sent, "POST", "/v3/webhooks", key=issued("test"), body=body, test_mode=True))
    async with client:
        first = (await client.post("/v3/webhooks")).json()["data"]["signing_secret"]
        second = (await client.post("/v3/webhooks")).json()["data"]["signing_secret"]
    assert first.startswith("whsec_") and second.startswith("whsec_") and first != second


async def test_unsimulated_test_request_is_404_never_passed_on(sent: Policy) -> None:
    client, terminal = harness(stage(), seed(sent, "POST", "/v3/unknown", key=issued("test"), body={}, test_mode=True))
    async with client:
        response = await client.post("/v3/unknown")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "RESOURCE_002"
    assert response.headers["x-test-mode"] == "true"
    assert terminal.calls == 0


@pytest.mark.parametrize(("path", "named"), [
    ("/v3/contacts/alice@example.com", "PATCH /v3/contacts/{id} is not simulated"),      # a route without answers
    ("/v3/contacts/alice@example.com/notes", "PATCH on a path this policy does not declare"),  # no route
])
async def test_unsimulated_404_names_the_route_template_not_the_path(sent: Policy, path: str, named: str) -> None:
    """An error body ends up in client logs: it names the route, never what the path held (review item 12)."""
    quiet = {(r.method, r.path.text): replace(r, responses=()) if r.id == "contacts.update" else r
             for r in sent.route_list}
    policy = replace(sent, routes=PathTable((method, r.path, r) for (method, _), r in quiet.items()))
    client, terminal = harness(stage(), seed(policy, "PATCH", path, key=issued("test"), body={}, test_mode=True))
    async with client:
        response = await client.patch(path)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert named in message
    assert "alice" not in response.text and "example.com" not in response.text
    assert terminal.calls == 0


@pytest.mark.parametrize(
    ("key", "method", "passes"),
    [
        (passthrough("sk_test_provider"), "GET", True),
        (passthrough("sk_test_provider"), "POST", False),
        (issued("test"), "GET", False),
    ],
)
async def test_only_provider_key_reads_pass_in_test_mode(sent: Policy, key: Any, method: str, passes: bool) -> None:
    client, terminal = harness(stage(), seed(sent, method, "/v3/contacts/c1/other", key=key, test_mode=True))
    async with client:
        await client.request(method, "/v3/contacts/c1/other")
    assert terminal.calls == (1 if passes else 0)


async def test_live_requests_pass_on(sent: Policy) -> None:
    client, terminal = harness(stage(), seed(sent, "POST", "/v3/contacts", key=issued("live"), body={},
                                             test_mode=False))
    async with client:
        assert (await client.post("/v3/contacts")).status_code == 299
    assert terminal.calls == 1


async def test_undecided_requests_never_pass(sent: Policy) -> None:
    client, terminal = harness(stage(), seed(sent, "POST", "/v3/contacts", key=issued("live"), body={}))
    async with client:
        response = await client.post("/v3/contacts")
    assert response.status_code == 500
    assert response.json()["error"]["outcome"] == "not_sent"
    assert terminal.calls == 0
