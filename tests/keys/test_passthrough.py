"""Pass-through keys: verified once with the provider, cached, and failing closed when it cannot answer."""

from __future__ import annotations

import asyncio
import dataclasses
from functools import cache
from pathlib import Path

import httpx
import pytest

from proxy.errors import GatewayError
from proxy.keys.passthrough import PassthroughVerifier
from proxy.policy.loader import load_policies
from proxy.policy.model import Policy

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk_live_passthrough_0001"


@cache
def sent() -> Policy:
    policy = load_policies(ROOT / "policies").by_name("sent")
    assert policy is not None and policy.keys.passthrough is not None
    return policy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """A MockTransport that records every verification request and answers with ``status`` (or raises)."""

    def __init__(self, status: int = 200, error: Exception | None = None, delay: float = 0.0) -> None:
        self.status = status
        self.error = error
        self.delay = delay
        self.requests: list[httpx.Request] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, json={})


def verifier(
    provider: Provider, clock: FakeClock, policy: Policy | None = None, *, timeout: float = 5.0,
    max_entries: int = 10_000,
) -> PassthroughVerifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(provider.handle))
    return PassthroughVerifier(policy or sent(), client, clock=clock, timeout=timeout, max_entries=max_entries)


async def test_a_valid_key_is_asked_with_a_read_only_call_and_cached_for_the_ttl() -> None:
    provider, clock = Provider(200), FakeClock()
    v = verifier(provider, clock)
    assert await v.verify(KEY) is True
    assert [(r.method, str(r.url), r.headers["x-api-key"]) for r in provider.requests] == [
        ("GET", "https://api.sent.dm/v3/me", KEY),
    ]
    clock.now += 299
    assert await v.verify(KEY) is True
    assert len(provider.requests) == 1
    clock.now += 2  # past ttl_seconds: 300
    assert await v.verify(KEY) is True
    assert len(provider.requests) == 2
    await v.client.aclose()


@pytest.mark.parametrize("status", [200, 204, 299])
async def test_any_2xx_means_valid(status: int) -> None:
    v = verifier(Provider(status), FakeClock())
    assert await v.verify(KEY) is True
    await v.client.aclose()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_is_invalid_and_negatively_cached(status: int) -> None:
    provider, clock = Provider(status), FakeClock()
    v = verifier(provider, clock)
    assert await v.verify(KEY) is False
    clock.now += 29
    assert await v.verify(KEY) is False
    assert len(provider.requests) == 1
    clock.now += 2  # past negative_ttl_seconds: 30
    provider.status = 200
    assert await v.verify(KEY) is True
    assert len(provider.requests) == 2
    await v.client.aclose()


@pytest.mark.parametrize(
    "provider",
    [
        Provider(500),
        Provider(502),
        Provider(503),
        Provider(429),
        Provider(404),
        Provider(302),
        Provider(error=httpx.ConnectError("connection refused")),
        Provider(error=httpx.ReadTimeout("read timed out")),
        Provider(error=httpx.RemoteProtocolError("server disconnected")),
        Provider(delay=5),  # slower than the verifier's own timeout
    ],
    ids=["500", "502", "503", "429", "404", "302", "connect-error", "read-timeout", "protocol-error", "too-slow"],
)
async def test_no_verdict_from_the_provider_fails_closed_with_503_and_is_not_cached(provider: Provider) -> None:
    v = verifier(provider, FakeClock(), timeout=0.05)
    for attempt in (1, 2):
        with pytest.raises(GatewayError) as caught:
            await v.verify(KEY)
        error = caught.value
        assert (error.status, error.code, error.outcome) == (503, "key_verification_unavailable", "not_sent")
        assert error.headers == {"retry-after": "5"}
        assert len(provider.requests) == attempt  # nothing was cached: the next request asks again
    await v.client.aclose()


async def test_concurrent_checks_of_one_key_make_one_provider_call() -> None:
    provider = Provider(200, delay=0.02)
    v = verifier(provider, FakeClock())
    results = await asyncio.gather(*(v.verify(KEY) for _ in range(20)))
    assert results == [True] * 20
    assert len(provider.requests) == 1
    await v.client.aclose()


async def test_concurrent_checks_share_a_failure_too() -> None:
    provider = Provider(503, delay=0.02)
    v = verifier(provider, FakeClock())
    results = await asyncio.gather(*(v.verify(KEY) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, GatewayError) and r.status == 503 for r in results)
    assert len(provider.requests) == 1
    provider.status = 200
    assert await v.verify(KEY) is True
    await v.client.aclose()


async def test_concurrent_checks_of_different_keys_are_separate_calls() -> None:
    provider = Provider(200, delay=0.01)
    v = verifier(provider, FakeClock())
    assert await asyncio.gather(*(v.verify(f"{KEY}_{i % 4}") for i in range(20))) == [True] * 20
    assert sorted(r.headers["x-api-key"] for r in provider.requests) == [f"{KEY}_{i}" for i in range(4)]
    await v.client.aclose()


async def test_waiters_are_not_left_hanging_when_the_verifying_request_is_cancelled() -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        asked.set()
        await release.wait()
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    v = PassthroughVerifier(sent(), client, clock=FakeClock())
    first = asyncio.create_task(v.verify(KEY))
    await asked.wait()
    waiter = asyncio.create_task(v.verify(KEY))
    await asyncio.sleep(0.01)
    first.cancel()  # e.g. the first client went away
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(GatewayError) as caught:
        await asyncio.wait_for(waiter, 1)
    assert caught.value.status == 503
    release.set()
    assert await v.verify(KEY) is True
    await client.aclose()


async def test_the_bearer_scheme_sends_an_authorization_header() -> None:
    policy = dataclasses.replace(sent(), keys=dataclasses.replace(sent().keys, header="authorization", scheme="bearer"))
    provider = Provider(200)
    v = verifier(provider, FakeClock(), policy)
    assert await v.verify(KEY) is True
    assert provider.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in provider.requests[0].headers
    await v.client.aclose()


async def test_the_cache_is_bounded_and_forgets_the_oldest_key_first() -> None:
    provider = Provider(200)
    v = verifier(provider, FakeClock(), max_entries=2)
    for key in ("k1", "k2", "k3"):
        assert await v.verify(key) is True
    assert len(provider.requests) == 3
    assert await v.verify("k3") is True and await v.verify("k2") is True
    assert len(provider.requests) == 3
    assert await v.verify("k1") is True  # evicted: asked again
    assert [r.headers["x-api-key"] for r in provider.requests] == ["k1", "k2", "k3", "k1"]
    await v.client.aclose()


async def test_the_cache_never_holds_the_raw_key() -> None:
    v = verifier(Provider(200), FakeClock())
    await v.verify(KEY)
    assert KEY not in repr(v._cache)
    await v.client.aclose()
