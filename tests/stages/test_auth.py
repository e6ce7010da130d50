"""Authentication: issued keys by digest, pass-through keys verified with the provider, 401 otherwise."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from proxy.keys.passthrough import PassthroughVerifier
from proxy.keys.registry import KeyRegistry, create_key
from proxy.metrics import Metrics
from proxy.policy.model import Policy
from proxy.settings import Secret
from proxy.stages.auth import Auth
from tests.stages.harness import harness
from tests.stages.seeds import seed

VALID_PASSTHROUGH = "sk_live_valid_at_provider"


def make_stage(sent: Policy, tmp_path: Path, asked: list[str]) -> tuple[Callable[[ASGIApp], ASGIApp], dict[str, str]]:
    file = tmp_path / "keys.json"
    live, _ = create_key(file, "sent", "live", ["*"], "sk_live_gw_")
    test, _ = create_key(file, "sent", "test", ["contacts:write"], "sk_test_gw_")
    other, _ = create_key(file, "sendgrid", "live", ["*"], "SG.gwlive.")

    def provider(request: httpx.Request) -> httpx.Response:
        key = request.headers.get("x-api-key", "")
        asked.append(key)
        return httpx.Response(200 if key == VALID_PASSTHROUGH else 401, json={})

    client = httpx.AsyncClient(transport=httpx.MockTransport(provider))
    stage = partial(
        Auth,
        registry=KeyRegistry(file),
        verifiers={"sent": PassthroughVerifier(sent, client)},
        credentials={"sent": Secret("provider-credential")},
        metrics=Metrics(CollectorRegistry()),
    )
    return stage, {"live": live, "test": test, "other_policy": other}


@pytest.mark.parametrize(
    ("which", "status", "key_id_prefix", "verified"),
    [
        ("live", 299, "key_", False),
        ("test", 299, "key_", False),
        ("passthrough", 299, "pt_", True),
        ("rejected", 401, None, True),
        ("unknown_issued", 401, None, False),
        ("other_policy", 401, None, False),  # a key issued for another policy is not a Sent key
    ],
)
async def test_identification(
    sent: Policy, tmp_path: Path, which: str, status: int, key_id_prefix: str | None, verified: bool
) -> None:
    asked: list[str] = []
    stage, keys = make_stage(sent, tmp_path, asked)
    presented = {
        **keys,
        "passthrough": VALID_PASSTHROUGH,
        "rejected": "sk_live_nobody_knows",
        "unknown_issued": "sk_test_gw_not_in_registry",
    }[which]
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts"))
    async with client:
        response = await client.post("/v3/contacts", headers={"x-api-key": presented})
    assert response.status_code == status
    if key_id_prefix:
        assert response.json()["key_id"].startswith(key_id_prefix)
    else:
        assert response.json()["error"]["code"] == "AUTH_001"
        assert terminal.calls == 0
    # Issued-looking keys are never shown to the provider, not even to verify them.
    assert (asked == [presented]) is verified


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "AUTH_001"),
        ({"x-api-key": ""}, 401, "AUTH_001"),
        ({"x-api-key": "   "}, 401, "AUTH_001"),
        ({"x-api-key": "LIVE", "authorization": "Bearer sk_test_other"}, 400, "AUTH_003"),
    ],
)
async def test_refusals(sent: Policy, tmp_path: Path, headers: dict[str, str], status: int, code: str) -> None:
    stage, keys = make_stage(sent, tmp_path, [])
    headers = {k: (keys["live"] if v == "LIVE" else v) for k, v in headers.items()}
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts"))
    async with client:
        response = await client.post("/v3/contacts", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert terminal.calls == 0


async def test_the_same_key_in_authorization_is_not_a_conflict(sent: Policy, tmp_path: Path) -> None:
    stage, keys = make_stage(sent, tmp_path, [])
    client, _ = harness(stage, seed(sent, "POST", "/v3/contacts"))
    async with client:
        response = await client.post("/v3/contacts",
                                     headers={"x-api-key": keys["live"], "authorization": f"Bearer {keys['live']}"})
    assert response.status_code == 299


async def test_key_header_twice_is_ambiguous(sent: Policy, tmp_path: Path) -> None:
    stage, keys = make_stage(sent, tmp_path, [])
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts"))
    async with client:
        response = await client.post("/v3/contacts", headers=[("x-api-key", keys["live"]), ("x-api-key", keys["test"])])
    assert response.status_code == 400
    assert terminal.calls == 0
