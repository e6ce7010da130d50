"""The soak: the real gateway under steady mixed traffic for five minutes (80 % test, 20 % live, with bad input
mixed in). After a warm-up its resident memory grows by less than 1 MiB per 10 minutes (least squares over
samples every 2 s), no request gets a 5xx, and once the traffic stops its open files (/proc/<pid>/fd) and
asyncio tasks (the ``testmode_proxy_event_loop_tasks`` gauge) come back to what they were before it began.

Five minutes is long for a developer's ``make test``: the test runs when ``TESTMODE_PROXY_SOAK=1`` (CI's
``.ci/run`` sets it) and is skipped otherwise; ``TESTMODE_PROXY_SOAK_SECONDS`` shortens it for a trial.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.canary import PHONE, marked
from tests.support.proc import KIB_PER_MIB, open_fds, rss_kib
from tests.support.servers import Gateway, Provider

pytestmark = pytest.mark.soak

DURATION = float(os.environ.get("TESTMODE_PROXY_SOAK_SECONDS", "300"))
WARM_UP = DURATION * 0.3  # the first 30 %: pools, caches and the allocator's arenas fill
RATE = 150  # requests per second, all workers together
WORKERS = 6
SAMPLE_EVERY = 2.0
MAX_SLOPE_MIB_PER_10_MIN = 1.0

SEND = {"to": [PHONE], "text": "soak"}
CONTACT = {"phone_number": PHONE}
SANDBOX_MAIL = {"personalizations": [{"to": [{"email": "soak@example.com"}]}], "from": {"email": "gw@example.com"},
                "subject": "soak", "content": [{"type": "text/plain", "value": "soak"}],
                "mail_settings": {"sandbox_mode": {"enable": True}}}


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def soak_provider() -> Iterator[Provider]:
    stand_in = Provider()  # its own: the soak's live requests stay out of the session provider's records
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def soak_gateway(soak_provider: Provider, keys: Keys) -> Iterator[Gateway]:
    gw = Gateway(upstream=soak_provider.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_CREDENTIAL_SENDGRID": "SG.provider.credential",
                      # idle upstream connections close soon after the traffic, so open files can settle
                      "TESTMODE_PROXY_UPSTREAM_KEEPALIVE_SECONDS": "2"})
    yield gw
    gw.stop()


Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def _requests(keys: Keys) -> list[tuple[float, str, Call]]:
    """(weight, kind, call) for one request of the mix; weights add up to 100."""
    # Misconfigured clients repeat their key: 10 unknown keys, each re-verified every 30 s (negative cache), stay
    # under the per-client verification rate (TESTMODE_PROXY_VERIFY_CLIENT_PER_MINUTE, 30).
    unknown_keys = itertools.cycle([marked("sk_live_") for _ in range(10)])
    sent_test, sent_live = {"x-api-key": keys.sent_test}, {"x-api-key": keys.sent_live}
    return [
        (40, "test", lambda c: c.post("/v3/messages", headers=sent_test, json=SEND)),
        (15, "test", lambda c: c.post("/v3/contacts", headers=sent_live, json={**CONTACT, "test_mode": True})),
        (10, "test", lambda c: c.post("/v3/mail/send", headers={"authorization": f"Bearer {keys.sendgrid_live}"},
                                      json=SANDBOX_MAIL)),
        (10, "test", lambda c: c.get("/v3/me", headers=sent_test)),
        (12, "live", lambda c: c.post("/v3/contacts", headers=sent_live, json=CONTACT)),
        (5, "live", lambda c: c.get("/v3/templates", params={"page": 2}, headers=sent_live)),
        (3, "live", lambda c: c.post("/v3/messages", headers=sent_live, json=SEND)),
        (1.5, "bad", lambda c: c.post("/v3/messages", headers={**sent_live, "content-type": "application/json"},
                                      content=b'{"to": [')),
        (1.5, "bad", lambda c: c.post("/v3/messages", headers=sent_live, json={**SEND, "test_mode": "true"})),
        (1, "bad", lambda c: c.get("/v3/contacts", headers={"x-api-key": next(unknown_keys)})),
        (1, "bad", lambda c: c.post("/v3/contacts", headers=sent_test, json={"phone_number": 5})),
    ]


async def _raw(port: int, payload: bytes, linger: float = 0.0) -> bytes:
    """A connection of its own: send ``payload``, maybe wait, read until the gateway closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        if linger:
            await asyncio.sleep(linger)
            return b""  # abandoned half-way
        return await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


async def _load(gw: Gateway, keys: Keys, until: float, tally: Tally) -> None:
    mix = _requests(keys)
    weights = [weight for weight, _, _ in mix]
    rng = random.Random(15)

    async def worker() -> None:
        interval = WORKERS / RATE
        next_at = time.monotonic()
        async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False) as client:
            while (now := time.monotonic()) < until:
                next_at = max(next_at + interval, now - 1)  # keep the pace; never a burst to catch up
                await asyncio.sleep(max(0.0, next_at - now))
                _, kind, call = rng.choices(mix, weights)[0]
                response = await call(client)
                tally.kinds[kind] += 1
                tally.statuses[(kind, response.status_code // 100 * 100)] += 1

    async def edge() -> None:
        """Bad input at the HTTP layer, on connections of its own: garbage, an abandoned head, a fresh client."""
        while time.monotonic() < until:
            answer = await _raw(gw.port, b"\x16\x03\x01 garbage\r\n\r\n")
            tally.statuses[("edge", int(answer.split(b" ", 2)[1]) // 100 * 100)] += 1
            await _raw(gw.port, b"POST /v3/messages HTTP/1.1\r\nHost: gw\r\n", linger=0.05)
            async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False) as fresh:
                response = await fresh.get("/healthz")
                tally.statuses[("edge", response.status_code // 100 * 100)] += 1
            tally.kinds["bad"] += 2
            await asyncio.sleep(0.2)

    await asyncio.gather(*(worker() for _ in range(WORKERS)), edge())


async def _tasks(client: httpx.AsyncClient) -> int:
    page = (await client.get("/metrics")).text
    found = re.search(r"^testmode_proxy_event_loop_tasks (\S+)$", page, flags=re.MULTILINE)
    assert found, "no testmode_proxy_event_loop_tasks gauge"
    return int(float(found.group(1)))


def _slope_per_second(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    return (sum((t - mean_t) * (v - mean_v) for t, v in samples)
            / sum((t - mean_t) ** 2 for t, _ in samples))


async def _settled(measure: Callable[[], Awaitable[int]], baseline: int, seconds: float = 20) -> int:
    """The measure once it is back at ``baseline`` or below, or its value after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = await measure()
        if value <= baseline or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.5)


async def test_a_five_minute_soak_leaks_no_memory_files_or_tasks(
    soak_gateway: Gateway, keys: Keys, figure: Callable[[str], None]
) -> None:
    pid = soak_gateway.process.pid
    async with httpx.AsyncClient(base_url=soak_gateway.url, timeout=10, trust_env=False) as admin:
        tally = Tally()
        await _load(soak_gateway, keys, time.monotonic() + 3, tally)  # every path once, then idle
        await asyncio.sleep(4)  # past the upstream keep-alive: the pool's connections close
        fds_before, tasks_before = open_fds(pid), await _tasks(admin)

        started = time.monotonic()
        tally = Tally()
        load = asyncio.create_task(_load(soak_gateway, keys, started + DURATION, tally))
        samples: list[tuple[float, float]] = []
        while not load.done():
            samples.append((time.monotonic() - started, rss_kib(pid) / KIB_PER_MIB))
            await asyncio.wait([load], timeout=SAMPLE_EVERY)
        await load

        async def fds_now() -> int:
            return open_fds(pid)

        fds_after = await _settled(fds_now, fds_before)
        tasks_after = await _settled(lambda: _tasks(admin), tasks_before)

    steady = [(t, rss) for t, rss in samples if t >= WARM_UP]
    slope = _slope_per_second(steady) * 600
    total = sum(tally.kinds.values())
    server_errors = {key: n for key, n in tally.statuses.items() if key[1] >= 500}
    figure(f"{DURATION:.0f} s, {total} requests ({total / DURATION:.0f}/s; {dict(tally.kinds)}); RSS "
           f"{samples[0][1]:.1f} -> {samples[-1][1]:.1f} MiB, slope after {WARM_UP:.0f} s warm-up "
           f"{slope:+.2f} MiB/10 min; open files {fds_before} -> {fds_after}; tasks {tasks_before} -> {tasks_after}; "
           f"statuses {dict(sorted(tally.statuses.items()))}")
    assert server_errors == {}
    assert tally.kinds["live"] > 0.15 * total and tally.kinds["test"] > 0.7 * total and tally.kinds["bad"] > 0
    assert slope < MAX_SLOPE_MIB_PER_10_MIN, f"RSS grows {slope:.2f} MiB per 10 minutes after warm-up"
    assert fds_after <= fds_before, f"open files {fds_before} before the soak, {fds_after} after it settled"
    assert tasks_after <= tasks_before, f"asyncio tasks {tasks_before} before the soak, {tasks_after} after"
