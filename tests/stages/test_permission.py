"""Scopes: ``*``, exact, and family wildcards; undeclared paths need read/write."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.policy.model import Policy
from proxy.stages.permission import Permission
from tests.stages.harness import harness
from tests.stages.seeds import issued, seed


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        (("*",), "POST", "/v3/messages", True),
        (("messages:write",), "POST", "/v3/messages", True),
        (("messages:*",), "POST", "/v3/messages", True),
        (("contacts:write",), "POST", "/v3/messages", False),
        (("messages:read",), "POST", "/v3/messages", False),
        ((), "POST", "/v3/messages", False),
        (("read",), "GET", "/v3/contacts", True),
        (("read",), "POST", "/v3/unknown", False),
        (("write",), "POST", "/v3/unknown", True),
    ],
)
async def test_scopes(sent: Policy, scopes: tuple[str, ...], method: str, path: str, allowed: bool) -> None:
    client, terminal = harness(Permission, seed(sent, method, path, key=issued("live", scopes)))
    async with client:
        response = await client.request(method, path)
    assert response.status_code == (299 if allowed else 403)
    if not allowed:
        assert response.json()["error"]["code"] == "AUTH_002"
        assert terminal.calls == 0


@pytest.mark.parametrize(("key", "test"), [(issued("test", scopes=("contacts:read",), key="sk_test_gw_x"), True),
                                           (issued("live", scopes=("contacts:read",)), False)])
async def test_a_refusal_says_test_mode_exactly_when_the_key_does(sent: Policy, key: Any, test: bool) -> None:
    client, terminal = harness(Permission, seed(sent, "POST", "/v3/contacts", key=key))
    async with client:
        response = await client.post("/v3/contacts")
    assert response.status_code == 403
    assert (response.headers.get("x-test-mode") == "true") is test
    assert response.headers["x-request-id"].startswith("req_test_") is test
    assert response.json()["meta"]["request_id"] == response.headers["x-request-id"]
    assert terminal.calls == 0
