"""A hostile provider, through the real server (proxy/forward.py): oversized and malformed response heads,
truncated bodies, resets, drips, redirects and a 100 MiB body. Each mode gets the right 502/504 and
``outcome`` within the deadline, in bounded memory, with the provider hit once, and the next request
works on a fresh connection. Every test reports the figures it reached (see the run's summary)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.attacker import attacker_listener
from tests.support.envelope import error
from tests.support.hostile_provider import MIB, HostileProvider, hostile_provider
from tests.support.proc import KIB_PER_MIB, peak_kib, reset_peak
from tests.support.servers import Gateway

DEADLINE = 3.0  # TESTMODE_PROXY_UPSTREAM_TOTAL_TIMEOUT of this module's gateway
TICK = 0.05  # proxy.deadline fires at most this late


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileProvider]:
    with hostile_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def gateway_to_hostile(hostile: HostileProvider, keys: Keys) -> Iterator[Gateway]:
    gw = Gateway(upstream=hostile.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_UPSTREAM_TOTAL_TIMEOUT": str(DEADLINE)})
    yield gw
    gw.stop()


@pytest.fixture
def http(gateway_to_hostile: Gateway, hostile: HostileProvider) -> Iterator[httpx.Client]:
    hostile.clear()
    with httpx.Client(base_url=gateway_to_hostile.url, timeout=30, trust_env=False) as client:
        yield client


def failures(client: httpx.Client, reason: str) -> float:
    """testmode_proxy_upstream_failures_total for ``reason`` (outcome unknown), from a /metrics scrape."""
    pattern = rf'^testmode_proxy_upstream_failures_total{{[^}}]*reason="{reason}"[^}}]*}} (\S+)$'
    found = re.search(pattern, client.get("/metrics").text, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@dataclass(frozen=True)
class Mode:
    status: int
    code: str
    reason: str


MODES = {
    "huge-header": Mode(502, "GATEWAY_003", "head_too_large"),  # one header of 100 KiB
    "spread-header": Mode(502, "GATEWAY_003", "head_too_large"),  # 100 KiB over 80 headers
    "many-headers": Mode(502, "GATEWAY_003", "too_many_headers"),  # 200 headers
    "garbage": Mode(502, "GATEWAY_003", "malformed"),
    "truncated": Mode(502, "GATEWAY_003", "truncated"),
    "reset": Mode(502, "GATEWAY_003", "reset"),
    "drip": Mode(504, "GATEWAY_002", "timeout"),  # one byte every 0.8 s: never an inactivity timeout
}


@pytest.mark.parametrize("mode", MODES)
def test_a_hostile_answer_is_a_clean_gateway_error_and_the_next_request_works(
    http: httpx.Client, gateway_to_hostile: Gateway, hostile: HostileProvider, keys: Keys,
    figure: Callable[[str], None], mode: str,
) -> None:
    expected = MODES[mode]
    pid = gateway_to_hostile.process.pid
    counted = failures(http, expected.reason)
    before = reset_peak(pid)
    started = time.monotonic()
    response = http.post(f"/hostile/{mode}", headers={"x-api-key": keys.sent_live}, json={"to": ["+15555550100"]})
    elapsed = time.monotonic() - started
    growth_mib = (peak_kib(pid) - before) / KIB_PER_MIB
    err = error(response, expected.status, expected.code)
    figure(f"{mode}: {response.status_code} outcome={err['outcome']} in {elapsed:.3f}s, "
           f"peak RSS +{growth_mib:.1f} MiB")

    assert err["outcome"] == "unknown"  # the request was sent: the provider may have acted
    assert response.headers["x-should-retry"] == "false"
    assert failures(http, expected.reason) == counted + 1
    if expected.status == 504:
        assert DEADLINE <= elapsed < DEADLINE + TICK + 0.5, elapsed
    else:
        assert elapsed < 1.0, elapsed  # refused as it arrives, not at the deadline
    assert growth_mib < 8, f"peak RSS grew {growth_mib:.1f} MiB"
    [received] = hostile.records
    assert (received.method, received.path) == ("POST", f"/hostile/{mode}")  # once: never retried

    after = http.get("/v3/contacts", headers={"x-api-key": keys.sent_live})
    assert after.status_code == 200 and after.json()["data"] == {"live": True}
    assert [r.path for r in hostile.records] == [f"/hostile/{mode}", "/v3/contacts"]
    # The connection that carried the hostile answer is never used again.
    assert hostile.records[1].connection != received.connection


def test_a_redirect_to_another_host_is_relayed_and_never_followed(
    http: httpx.Client, hostile: HostileProvider, keys: Keys, figure: Callable[[str], None]
) -> None:
    with attacker_listener() as attacker:
        target = f"{attacker.url}/collect"
        response = http.get("/hostile/redirect", params={"to": target}, headers={"x-api-key": keys.sent_live})
        time.sleep(0.2)  # a follow would have connected by now
        hits = list(attacker.hits)
    figure(f"redirect: {response.status_code} relayed, {len(hits)} connections at the other host")
    assert response.status_code == 302
    assert response.headers["location"] == target
    assert hits == []
    [received] = hostile.records
    assert received.path.startswith("/hostile/redirect?to=")


def test_a_100_mib_body_of_unknown_length_streams_through_in_bounded_memory(
    http: httpx.Client, gateway_to_hostile: Gateway, hostile: HostileProvider, keys: Keys,
    figure: Callable[[str], None],
) -> None:
    pid = gateway_to_hostile.process.pid
    before = reset_peak(pid)
    received = 0
    started = time.monotonic()
    with http.stream("GET", "/hostile/big", params={"mib": 100}, headers={"x-api-key": keys.sent_live}) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # chunked from the provider, chunked to the client
        for chunk in response.iter_raw(256 * 1024):
            received += len(chunk)
            if received % (8 * MIB) < len(chunk):
                time.sleep(0.01)  # a client slower than the provider: back-pressure, not buffering
    elapsed = time.monotonic() - started
    growth_mib = (peak_kib(pid) - before) / KIB_PER_MIB
    figure(f"100 MiB chunked body: {received / MIB:.0f} MiB in {elapsed:.2f}s, peak RSS +{growth_mib:.1f} MiB")
    assert received == 100 * MIB
    assert growth_mib < 20, f"peak RSS grew {growth_mib:.1f} MiB for a 100 MiB body"
    assert len(hostile.records) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
def test_a_request_lost_on_a_reused_connection_is_never_sent_again(
    http: httpx.Client, hostile: HostileProvider, keys: Keys, method: str
) -> None:
    """aiohttp resends an idempotent request once when a kept-alive connection drops under it; a provider
    may already have acted on a PUT or DELETE, so the gateway turns that off (proxy/forward.py). The
    provider answers one request, keeps the connection, then resets it when the next one arrives on it."""
    warm = http.get("/hostile/ok", headers={"x-api-key": keys.sent_live})
    assert warm.status_code == 200
    lost = http.request(method, "/hostile/reset", headers={"x-api-key": keys.sent_live})
    assert error(lost, 502)["outcome"] == "unknown"
    [first] = [r for r in hostile.records if r.path == "/hostile/ok"]
    resets = [r for r in hostile.records if r.path == "/hostile/reset"]
    assert len(resets) == 1, f"{method} reached the provider {len(resets)} times"
    assert resets[0].connection == first.connection  # it was sent on the reused connection
