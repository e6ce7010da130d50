"""Pass-through keys: a key the registry does not know is verified with the provider, then cached.

The provider is asked with a read-only call (the policy's ``keys.passthrough.verify_path``; for Sent,
``GET /v3/me``). A 2xx makes the key valid for ``ttl_seconds``; a 401/403 makes it invalid for
``negative_ttl_seconds``. Any other answer (429, 5xx, no answer) means the key cannot be judged:
verification fails closed with **503 key_verification_unavailable**, ``outcome: not_sent`` and
``Retry-After`` — not 401, because the key may well be valid and the client should retry rather
than rotate it; not a forward, because an unverified key must not get a synthesized test response.
Concurrent checks of one key share a single provider call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx
import structlog

from proxy.errors import GatewayError
from proxy.keys.identity import digest
from proxy.policy.model import Policy

log = structlog.get_logger("proxy.keys")


class PassthroughVerifier:
    def __init__(
        self,
        policy: Policy,
        client: httpx.AsyncClient,
        *,
        timeout: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert policy.keys.passthrough is not None
        self.policy = policy
        self.spec = policy.keys.passthrough
        self.client = client
        self.timeout = timeout
        self.max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bool]] = {}

    async def verify(self, presented: str) -> bool:
        """True: the provider accepts the key. False: it rejects it. Raises 503 when it cannot say."""
        key = digest(presented)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > self.clock():
            return hit[0]
        if (pending := self._inflight.get(key)) is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            valid = await self._ask(presented)
        except BaseException as exc:
            # Waiters share this outcome. If this check was cancelled (its client went away), they
            # must not wait forever on a future nobody will resolve: they fail closed with the 503.
            future.set_exception(exc if isinstance(exc, GatewayError) else _unavailable())
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._inflight.pop(key, None)
        ttl = self.spec.ttl_seconds if valid else self.spec.negative_ttl_seconds
        self._cache[key] = (valid, self.clock() + ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        future.set_result(valid)
        return valid

    async def _ask(self, presented: str) -> bool:
        value = f"Bearer {presented}" if self.policy.keys.scheme == "bearer" else presented
        url = self.policy.base_url + self.spec.path
        try:
            response = await asyncio.wait_for(
                self.client.request(self.spec.method, url, headers={self.policy.keys.header: value}),
                self.timeout,
            )
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            log.warning("key_verification_unavailable", policy=self.policy.name, error=type(exc).__name__)
            raise _unavailable() from exc
        if 200 <= response.status_code < 300:
            return True
        if response.status_code in (401, 403):
            return False
        log.warning("key_verification_unavailable", policy=self.policy.name, upstream_status=response.status_code)
        raise _unavailable()


def _unavailable() -> GatewayError:
    return GatewayError(
        503,
        "key_verification_unavailable",
        "The API key could not be verified because the provider did not answer; nothing was sent. Retry later.",
        outcome="not_sent",
        headers={"retry-after": "5"},
    )
