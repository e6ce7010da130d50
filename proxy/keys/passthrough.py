"""Pass-through keys: a key the registry does not know is verified with the provider, then cached.

Only a key of the policy's own shape gets here (:mod:`proxy.keys.shapes`, checked by *auth*). The
provider is asked with a read-only call (the policy's ``keys.passthrough.verify_path``; for Sent,
``GET /v3/me``). A 2xx makes the key valid for ``ttl_seconds``; a 401/403 makes it invalid for
``negative_ttl_seconds``. Any other answer (429, 5xx, no answer) means the key cannot be judged:
verification fails closed with **503 key_verification_unavailable**, ``outcome: not_sent`` and
``Retry-After`` — not 401, because the key may well be valid and the client should retry rather
than rotate it; not a forward, because an unverified key must not get a synthesized test response.

* Verdicts are kept in a bounded LRU cache (a hit moves the key to the end; the least recently used
  verdict goes first), by digest, never the raw key.
* Concurrent checks of one key share a single provider call.
* A verification (a cache miss) first takes a token from the :class:`VerificationLimiter`: 429
  ``rate_limited`` past it (security issue item 3).
* A provider that answers 429 is not asked again for a while (its ``Retry-After``, 1-60 s, else
  5 s): every uncached key gets the 503 at once meanwhile. Its limit counts the gateway's calls,
  not one key's, so asking for the next key would only keep the lock-out going. "Unavailable", not
  "invalid": nothing is cached about any key.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx
import structlog

from proxy.errors import GatewayError
from proxy.keys.identity import KeyIdentity, digest
from proxy.keys.ratelimit import VerificationLimiter
from proxy.policy.model import Policy
from proxy.settings import Secret

log = structlog.get_logger("proxy.keys")

_BACKOFF_DEFAULT = 5.0
_BACKOFF_MAX = 60.0


class PassthroughVerifier:
    def __init__(
        self,
        policy: Policy,
        client: httpx.AsyncClient,
        *,
        timeout: float = 5.0,
        max_entries: int = 10_000,
        limiter: VerificationLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert policy.keys.passthrough is not None
        self.policy = policy
        self.spec = policy.keys.passthrough
        self.client = client
        self.timeout = timeout
        self.max_entries = max_entries
        self.limiter = limiter
        self.clock = clock
        # digest → (identity, or None for a rejected key; expiry on self.clock)
        self._cache: OrderedDict[str, tuple[KeyIdentity | None, float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[KeyIdentity | None]] = {}
        self._backoff_until = 0.0  # the provider answered 429: not asked before this

    async def verify(
        self, presented: str, peer: str | None = None, forwarded_for: str | None = None
    ) -> KeyIdentity | None:
        """The key's identity when the provider accepts it, None when it rejects it. Raises 503 when it
        cannot say, 429 past the verification limits. ``peer``/``forwarded_for`` name the client."""
        key = digest(presented)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > self.clock():
            self._cache.move_to_end(key)
            return hit[0]
        if (pending := self._inflight.get(key)) is not None:
            return await asyncio.shield(pending)
        if (wait := self._backoff_until - self.clock()) > 0:
            raise _unavailable(wait, "provider_rate_limited")
        if self.limiter is not None:
            self.limiter.admit(peer, forwarded_for)
        future: asyncio.Future[KeyIdentity | None] = asyncio.get_running_loop().create_future()
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
        identity = None
        if valid:
            identity = KeyIdentity("pt_" + key[:12], "passthrough", None, self.spec.scopes, Secret(presented),
                                   presented)
        ttl = self.spec.ttl_seconds if valid else self.spec.negative_ttl_seconds
        self._cache[key] = (identity, self.clock() + ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        future.set_result(identity)
        return identity

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
        if response.status_code == 429:
            backoff = _retry_after(response.headers.get("retry-after"))
            self._backoff_until = max(self._backoff_until, self.clock() + backoff)
            raise _unavailable(backoff, "provider_rate_limited")
        raise _unavailable()


def _retry_after(value: str | None) -> float:
    """The provider's ``Retry-After`` in seconds (delay-seconds form only), kept within 1-60 s."""
    try:
        seconds = float(value) if value is not None else _BACKOFF_DEFAULT
    except ValueError:
        seconds = _BACKOFF_DEFAULT
    if not math.isfinite(seconds):
        seconds = _BACKOFF_DEFAULT
    return min(max(seconds, 1.0), _BACKOFF_MAX)


def _unavailable(retry_after: float = 5.0, reason: str = "key_verification_unavailable") -> GatewayError:
    why = "is limiting the gateway's calls" if reason == "provider_rate_limited" else "did not answer"
    return GatewayError(
        503,
        "key_verification_unavailable",
        f"The API key could not be verified because the provider {why}; nothing was sent. Retry later.",
        outcome="not_sent",
        reason=reason,
        headers={"retry-after": str(max(1, math.ceil(retry_after)))},
    )
