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
from proxy.keys.ratelimit import Rate, VerificationLimiter
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
    assert await v.verify(KEY) is not None
    assert [(r.method, str(r.url), r.headers["x-api-key"]) for r in provider.requests] == [
        ("GET", "https://api.sent.dm/v3/me", KEY),
    ]
    clock.now += 299
    assert await v.verify(KEY) is not None
    assert len(provider.requests) == 1
    clock.now += 2  # past ttl_seconds: 300
    assert await v.verify(KEY) is not None
    assert len(provider.requests) == 2
    await v.client.aclose()


@pytest.mark.parametrize("status", [200, 204, 299])
async def test_any_2xx_means_valid(status: int) -> None:
    v = verifier(Provider(status), FakeClock())
    assert await v.verify(KEY) is not None
    await v.client.aclose()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_is_invalid_and_negatively_cached(status: int) -> None:
    provider, clock = Provider(status), FakeClock()
    v = verifier(provider, clock)
    assert await v.verify(KEY) is None
    clock.now += 29
    assert await v.verify(KEY) is None
    assert len(provider.requests) == 1
    clock.now += 2  # past negative_ttl_seconds: 30
    provider.status = 200
    assert await v.verify(KEY) is not None
    assert len(provider.requests) == 2
    await v.client.aclose()


@pytest.mark.parametrize(
    "provider",
    [
        Provider(500),
        Provider(502),
        Provider(503),
        Provider(404),
        Provider(302),
        Provider(error=httpx.ConnectError("connection refused")),
        Provider(error=httpx.ReadTimeout("read timed out")),
        Provider(error=httpx.RemoteProtocolError("server disconnected")),
        Provider(delay=5),  # slower than the verifier's own timeout
    ],
    ids=["500", "502", "503", "404", "302", "connect-error", "read-timeout", "protocol-error", "too-slow"],
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
    assert all(r is not None for r in results) and len(results) == 20
    assert len(provider.requests) == 1
    await v.client.aclose()


async def test_concurrent_checks_share_a_failure_too() -> None:
    provider = Provider(503, delay=0.02)
    v = verifier(provider, FakeClock())
    results = await asyncio.gather(*(v.verify(KEY) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, GatewayError) and r.status == 503 for r in results)
    assert len(provider.requests) == 1
    provider.status = 200
    assert await v.verify(KEY) is not None
    await v.client.aclose()


async def test_concurrent_checks_of_different_keys_are_separate_calls() -> None:
    provider = Provider(200, delay=0.01)
    v = verifier(provider, FakeClock())
    results = await asyncio.gather(*(v.verify(f"{KEY}_{i % 4}") for i in range(20)))
    assert all(r is not None for r in results)
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
    assert await v.verify(KEY) is not None
    await client.aclose()


async def test_the_bearer_scheme_sends_an_authorization_header() -> None:
    policy = dataclasses.replace(sent(), keys=dataclasses.replace(sent().keys, header="authorization", scheme="bearer"))
    provider = Provider(200)
    v = verifier(provider, FakeClock(), policy)
    assert await v.verify(KEY) is not None
    assert provider.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in provider.requests[0].headers
    await v.client.aclose()


async def test_the_cache_is_bounded_and_forgets_the_least_recently_used_key_first() -> None:
    provider = Provider(200)
    v = verifier(provider, FakeClock(), max_entries=2)
    for key in ("k1", "k2", "k1"):  # k1 is used again: k2 is now the least recently used
        assert await v.verify(key) is not None
    assert await v.verify("k3") is not None  # the cache is full: k2 goes, not k1 (the first inserted)
    assert await v.verify("k1") is not None
    assert [r.headers["x-api-key"] for r in provider.requests] == ["k1", "k2", "k3"]
    assert await v.verify("k2") is not None  # evicted: asked again
    assert [r.headers["x-api-key"] for r in provider.requests] == ["k1", "k2", "k3", "k2"]
    await v.client.aclose()


async def test_the_cache_never_holds_the_raw_key() -> None:
    v = verifier(Provider(200), FakeClock())
    await v.verify(KEY)
    assert KEY not in repr(v._cache)
    await v.client.aclose()


async def test_a_verified_key_has_a_passthrough_identity_that_does_not_show_the_key() -> None:
    v = verifier(Provider(200), FakeClock())
    identity = await v.verify(KEY)
    assert identity is not None
    assert (identity.kind, identity.mode, identity.scopes) == ("passthrough", None, frozenset({"*"}))
    assert identity.key_id.startswith("pt_") and KEY not in identity.key_id and KEY not in repr(identity)
    assert identity.forward_credential is not None and identity.forward_credential.reveal() == KEY
    assert await v.verify(KEY) is identity  # the cached verdict is the same object: nothing built per request
    await v.client.aclose()


# ---------------------------------------------------------------- the provider's own 429

class Limited(Provider):
    """Answers 429 (with ``retry_after`` when given) until ``status`` is changed."""

    def __init__(self, retry_after: str | None) -> None:
        super().__init__(429)
        self.retry_after = retry_after

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = {"retry-after": self.retry_after} if self.retry_after is not None and self.status == 429 else {}
        return httpx.Response(self.status, json={}, headers=headers)


@pytest.mark.parametrize(("retry_after", "backoff"), [
    ("7", 7), (None, 5), ("0", 1), ("86400", 60), ("Wed, 21 Oct 2015 07:28:00 GMT", 5), ("nan", 5),
])
async def test_a_provider_429_stops_verifications_for_a_while_and_caches_no_verdict(
    retry_after: str | None, backoff: int
) -> None:
    provider, clock = Limited(retry_after), FakeClock()
    v = verifier(provider, clock)
    with pytest.raises(GatewayError) as first:
        await v.verify(KEY)
    clock.now += backoff - 0.5
    with pytest.raises(GatewayError) as other:  # another key: the provider is not asked meanwhile
        await v.verify(KEY + "_other")
    assert len(provider.requests) == 1
    for error in (first.value, other.value):
        assert (error.status, error.code, error.outcome) == (503, "key_verification_unavailable", "not_sent")
        assert error.reason == "provider_rate_limited"
    assert first.value.headers == {"retry-after": str(backoff)}
    assert other.value.headers == {"retry-after": "1"}  # what is left of the back-off, rounded up
    clock.now += 0.5
    provider.status = 200  # "unavailable" was never "invalid": the key is valid once the provider answers
    assert await v.verify(KEY) is not None
    assert len(provider.requests) == 2
    await v.client.aclose()


# ---------------------------------------------------------------- the verification limiter

async def test_only_verifications_take_from_the_limiter() -> None:
    provider, clock = Provider(200, delay=0.02), FakeClock()
    limiter = VerificationLimiter(per_client=Rate(60, 2), overall=Rate(600, 100), clock=clock)
    client = httpx.AsyncClient(transport=httpx.MockTransport(provider.handle))
    v = PassthroughVerifier(sent(), client, clock=clock, limiter=limiter)
    # 20 concurrent checks of one key share one provider call and one token.
    results = await asyncio.gather(*(v.verify(KEY, "10.0.0.1") for _ in range(20)))
    assert all(r is not None for r in results)
    for _ in range(10):  # cached verdicts: free
        assert await v.verify(KEY, "10.0.0.1") is not None
    assert await v.verify(KEY + "_2", "10.0.0.1") is not None  # the second token
    with pytest.raises(GatewayError) as caught:
        await v.verify(KEY + "_3", "10.0.0.1")
    assert (caught.value.status, caught.value.code, caught.value.headers) == (429, "rate_limited", {"retry-after": "1"})
    assert await v.verify(KEY + "_3", "10.0.0.2") is not None  # another client has its own bucket
    assert len(provider.requests) == 3
    await client.aclose()


async def test_a_provider_back_off_takes_no_token() -> None:
    provider, clock = Limited(None), FakeClock()
    limiter = VerificationLimiter(per_client=Rate(0, 2), overall=Rate(0, 100), clock=clock)
    client = httpx.AsyncClient(transport=httpx.MockTransport(provider.handle))
    v = PassthroughVerifier(sent(), client, clock=clock, limiter=limiter)
    for _ in range(5):
        with pytest.raises(GatewayError) as caught:
            await v.verify(KEY, "10.0.0.1")
        assert caught.value.status == 503
    clock.now += 5
    provider.status = 200
    assert await v.verify(KEY, "10.0.0.1") is not None  # the second of two tokens: the back-off took none
    await client.aclose()
