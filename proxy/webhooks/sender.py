"""One POST to a subscriber: the webhooks' own HTTP client, never the forwarding code.

Per ``shared/DESIGN.md`` ("Outbound calls other than forwarding") and ``reliability.md`` ("Outbound
URLs"): its own aiohttp session (``trust_env=False``: no proxy from the environment), a total deadline
per attempt (the policy's ``timeout``, 10 s for Blueticked: lookup, connect, send and the answer's
head all inside it), no redirects (a 3xx is a failed attempt), at most 1 KiB of the answer read, a cap
on attempts in flight, and the SSRF guard before every attempt with the connection pinned to the
addresses it checked (:class:`~proxy.webhooks.ssrf.PinnedResolver`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp
import yarl

from proxy.webhooks.ssrf import PINNED, Guard, PinnedResolver, Refused

USER_AGENT = "testmode-proxy-webhooks/1"
RESPONSE_SNIPPET = 1024


@dataclass(frozen=True, slots=True)
class Result:
    status: int | None
    address: str | None
    latency: float  # seconds, real time (perf_counter), whatever the clocks say
    error: str | None
    kind: str  # delivered | http_error | redirect | timeout | connect_error | refused (a bounded metrics label)
    response: str | None
    retry_after: float | None  # seconds, when the answer asked for a pause

    @property
    def delivered(self) -> bool:
        return self.kind == "delivered"


def retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class Sender:
    def __init__(self, guard: Guard, *, concurrency: int, now: Callable[[], float]) -> None:
        self.guard = guard
        self.now = now
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(), use_dns_cache=False, limit=self._concurrency,
                                         keepalive_timeout=15)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False,
                                              timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str], deadline: float) -> Result:
        """One attempt; every failure is a :class:`Result` (never raised). ``deadline``: seconds for all of it."""
        async with self._slots:
            started = time.perf_counter()
            address: str | None = None
            try:
                async with asyncio.timeout(deadline):
                    target = self.guard.parse(url)
                    addresses = await self.guard.addresses(target)
                    address = addresses[0]
                    token = PINNED.set({(target.host, target.port): addresses})
                    try:
                        return await self._exchange(target.url, body, headers, started, address)
                    finally:
                        PINNED.reset(token)
            except Refused as exc:
                return self._failed("refused", f"refused: {exc.message}", started, address)
            except TimeoutError:
                return self._failed("timeout", f"no answer within {deadline:g} s", started, address)
            except (aiohttp.ClientError, OSError) as exc:
                return self._failed("connect_error", f"{type(exc).__name__}: {exc}", started, address)

    async def _exchange(self, url: yarl.URL, body: bytes, headers: dict[str, str], started: float,
                        address: str) -> Result:
        assert self._session is not None, "Sender.start() was not awaited"
        async with self._session.post(url, data=body, headers={"user-agent": USER_AGENT, **headers},
                                      allow_redirects=False) as response:
            status = response.status
            snippet = (await response.content.read(RESPONSE_SNIPPET)).decode("utf-8", "replace")
            latency = time.perf_counter() - started
            pause = retry_after(response.headers.get("retry-after"), self.now())
        if 200 <= status < 300:
            return Result(status, address, latency, None, "delivered", snippet, None)
        if 300 <= status < 400:
            return Result(status, address, latency, "redirects are not followed", "redirect", snippet, pause)
        return Result(status, address, latency, f"HTTP {status}", "http_error", snippet, pause)

    @staticmethod
    def _failed(kind: str, error: str, started: float, address: str | None) -> Result:
        return Result(None, address, time.perf_counter() - started, error, kind, None, None)
