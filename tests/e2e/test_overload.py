"""Overload, through the real server: past the in-flight cap requests are shed at once with 503 (never a
500, never queued), a full upstream pool is a 503 after the pool wait (the gateway's overload, not the
provider's), and once the provider recovers every request succeeds again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.envelope import error
from tests.support.hostile_provider import HostileProvider, hostile_provider
from tests.support.servers import Gateway

CAP = 64
CONCURRENT = 200


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileProvider]:
    with hostile_provider() as provider:
        yield provider


@pytest.fixture
def held(hostile: HostileProvider) -> Iterator[HostileProvider]:
    """The provider hanging: every ``/hostile/hang`` waits until the test releases it."""
    hostile.clear()
    hostile.hold()
    yield hostile
    hostile.release()


async def _exchange(port: int, request: bytes) -> tuple[float, int, dict[str, Any]]:
    """Open a connection, then send ``request``: seconds from the write to the answer's head, status, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await asyncio.sleep(0.3)  # every connection is open and accepted before any request is sent
        sent = time.monotonic()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        answered = time.monotonic() - sent
        status = int(head.split(b" ", 2)[1])
        length = next(int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
        body = orjson.loads(await reader.readexactly(length))
        return answered, status, body
    finally:
        writer.close()


@dataclass(frozen=True)
class Burst:
    shed: list[tuple[float, int, dict[str, Any]]]  # the answers that came at once: seconds, status, body
    hanging: list[asyncio.Task[tuple[float, int, dict[str, Any]]]]  # the requests the provider holds
    reached: int  # requests the provider received

    def figure(self) -> str:
        times = sorted(seconds * 1000 for seconds, _, _ in self.shed)
        statuses = [status for _, status, _ in self.shed]
        return (f"{CONCURRENT} concurrent, cap {CAP}: {statuses.count(503)} x 503 (median {times[len(times) // 2]:.1f} "
                f"ms, slowest {times[-1]:.1f} ms), {statuses.count(500)} x 500, {self.reached} at the provider")


async def _burst(port: int, key: str, provider: HostileProvider) -> Burst:
    """``CONCURRENT`` live requests at once while the provider hangs; the answers that come within 2 s."""
    provider.clear()
    request = b"GET /hostile/hang HTTP/1.1\r\nHost: gw\r\nx-api-key: " + key.encode() + b"\r\n\r\n"
    calls = [asyncio.create_task(_exchange(port, request)) for _ in range(CONCURRENT)]
    done, pending = await asyncio.wait(calls, timeout=2.0)
    return Burst([call.result() for call in done], list(pending), len(provider.records))


async def test_past_the_in_flight_cap_requests_are_shed_at_once_and_recover(
    held: HostileProvider, keys: Keys, figure: Callable[[str], None]
) -> None:
    gw = Gateway(upstream=held.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_MAX_IN_FLIGHT": str(CAP)})
    try:
        # The same burst twice: the first pays a fresh process's one-time costs (first upstream connections,
        # first use of each code path) and is held to everything but the time; the second to the time too.
        for warm in (False, True):
            held.hold()
            burst = await _burst(gw.port, keys.sent_live, held)
            figure(("warm: " if warm else "cold: ") + burst.figure())
            assert sorted(status for _, status, _ in burst.shed) == [503] * (CONCURRENT - CAP)  # and no 500
            # Shed before routing, so in problem details (RFC 9457), saying nothing was sent.
            assert {(body["code"], body["outcome"]) for _, _, body in burst.shed} == {("overloaded", "not_sent")}
            assert len(burst.hanging) == burst.reached == CAP  # the shed ones never reached the provider
            if warm:
                slowest = max(seconds for seconds, _, _ in burst.shed)
                assert slowest < 0.1, f"the slowest 503 took {slowest * 1000:.1f} ms"
            held.release()  # the provider recovers: the held requests are answered
            assert [status for _, status, _ in await asyncio.gather(*burst.hanging)] == [200] * CAP

        held.clear()
        async with httpx.AsyncClient(base_url=gw.url, timeout=10, trust_env=False) as client:
            after = [await client.get("/v3/contacts", headers={"x-api-key": keys.sent_live}) for _ in range(100)]
        assert [r.status_code for r in after] == [200] * 100  # the next 100 requests all succeed
        assert len(held.records) == 100
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def small_pool_gateway(hostile: HostileProvider, keys: Keys) -> Iterator[Gateway]:
    gw = Gateway(upstream=hostile.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_UPSTREAM_POOL_SIZE": "2", "TESTMODE_PROXY_UPSTREAM_POOL_WAIT": "1"})
    yield gw
    gw.stop()


async def test_a_full_upstream_pool_is_503_not_sent_after_the_pool_wait(
    small_pool_gateway: Gateway, held: HostileProvider, keys: Keys, figure: Callable[[str], None]
) -> None:
    headers = {"x-api-key": keys.sent_live}
    async with httpx.AsyncClient(base_url=small_pool_gateway.url, timeout=10, trust_env=False) as client:
        hung = [asyncio.create_task(client.get("/hostile/hang", headers=headers)) for _ in range(2)]
        await asyncio.to_thread(held.wait_for, 2)
        started = time.monotonic()
        response = await client.post("/v3/messages", headers=headers, json={"to": ["+15555550100"], "text": "hi"})
        waited = time.monotonic() - started
        figure(f"pool of 2 busy: {response.status_code} after {waited:.3f}s (pool wait 1 s)")
        err = error(response, 503, "GATEWAY_004")
        assert err["outcome"] == "not_sent"
        assert response.headers["retry-after"] == "1"
        assert 1.0 <= waited < 1.3, waited
        assert len(held.records) == 2  # the third request never left

        held.release()
        assert [(await call).status_code for call in hung] == [200, 200]
        assert (await client.get("/v3/contacts", headers=headers)).status_code == 200


async def test_a_request_that_waits_less_than_the_pool_wait_goes_through(
    small_pool_gateway: Gateway, held: HostileProvider, keys: Keys
) -> None:
    headers = {"x-api-key": keys.sent_live}
    async with httpx.AsyncClient(base_url=small_pool_gateway.url, timeout=10, trust_env=False) as client:
        hung = [asyncio.create_task(client.get("/hostile/hang", headers=headers)) for _ in range(2)]
        await asyncio.to_thread(held.wait_for, 2)
        waiting = asyncio.create_task(client.get("/v3/contacts", headers=headers))
        await asyncio.sleep(0.4)
        assert not waiting.done()
        held.release()
        assert [(await call).status_code for call in [*hung, waiting]] == [200, 200, 200]
        assert len(held.records) == 3
