"""Authentication: issued keys by digest, keys of the policy's shape verified with the provider (within the
verification limits), 401 otherwise — and a key of any other shape is never shown to the provider."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from proxy.keys.passthrough import PassthroughVerifier
from proxy.keys.ratelimit import Rate, VerificationLimiter
from proxy.keys.registry import KeyRegistry, create_key
from proxy.metrics import Metrics
from proxy.policy.model import Policy
from proxy.settings import Secret
from proxy.stages.auth import Auth
from tests.stages.harness import harness
from tests.stages.seeds import seed

VALID_PASSTHROUGH = "sk_live_valid_at_provider"
SENDGRID_SHAPED = "SG." + "a" * 22 + "." + "b" * 43


def make_stage(
    sent: Policy, tmp_path: Path, asked: list[str], limiter: VerificationLimiter | None = None
) -> tuple[Callable[[ASGIApp], ASGIApp], dict[str, str]]:
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
        verifiers={"sent": PassthroughVerifier(sent, client, limiter=limiter)},
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
        # Not of Sent's shape: refused without a provider call (security issue items 3 and 5).
        ("junk", 401, None, False),
        ("no_prefix", 401, None, False),
        ("bare_prefix", 401, None, False),
        ("bad_alphabet", 401, None, False),
        ("sendgrid_key", 401, None, False),
        ("blueticked_key", 401, None, False),
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
        "rejected": "sk_live_nobody_knows_this_key",
        "unknown_issued": "sk_test_gw_not_in_registry",
        "junk": "invalid-key",
        "no_prefix": "0b5f0c3e-5d41-4c6f-9a43-6f1c2b8d9e70",
        "bare_prefix": "sk_live_",
        "bad_alphabet": "sk_live_" + "x" * 20 + "!",
        "sendgrid_key": SENDGRID_SHAPED,
        "blueticked_key": "blu_live_" + "c" * 32,
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
    # Only keys of Sent's own shape are ever shown to Sent, to verify them.
    assert (asked == [presented]) is verified


async def test_a_key_of_another_shape_is_told_what_the_policy_expects(sent: Policy, tmp_path: Path) -> None:
    stage, _ = make_stage(sent, tmp_path, [])
    client, _ = harness(stage, seed(sent, "POST", "/v3/contacts"))
    async with client:
        response = await client.post("/v3/contacts", headers={"x-api-key": SENDGRID_SHAPED})
    assert response.json()["error"]["message"] == "Invalid API key: sent keys look like sk_live_…, sk_test_…."


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


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_verifications_past_the_limit_are_429_in_the_dialect_and_cached_verdicts_are_free(
    sent: Policy, tmp_path: Path
) -> None:
    asked: list[str] = []
    clock = Clock()
    limiter = VerificationLimiter(per_client=Rate(per_minute=6, burst=2), overall=Rate(600, 100), clock=clock)
    stage, keys = make_stage(sent, tmp_path, asked, limiter)
    client, _ = harness(stage, seed(sent, "POST", "/v3/contacts"))
    async with client:
        async def post(key: str) -> httpx.Response:
            return await client.post("/v3/contacts", headers={"x-api-key": key})

        assert (await post(VALID_PASSTHROUGH)).status_code == 299           # a verification: 1 of 2
        assert (await post("sk_live_unknown_key_number_1")).status_code == 401  # 2 of 2
        limited = await post("sk_live_unknown_key_number_2")
        for _ in range(5):  # verdicts already cached and issued keys take nothing from the bucket
            assert (await post(VALID_PASSTHROUGH)).status_code == 299
            assert (await post("sk_live_unknown_key_number_1")).status_code == 401
            assert (await post(keys["live"])).status_code == 299
        clock.now += 10.0  # 6 a minute: one more after 10 s
        assert (await post("sk_live_unknown_key_number_2")).status_code == 401
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "10"
    assert limited.json()["error"]["code"] == "GATEWAY_006"
    assert limited.json()["error"]["outcome"] == "not_sent"
    assert asked == [VALID_PASSTHROUGH, "sk_live_unknown_key_number_1", "sk_live_unknown_key_number_2"]
