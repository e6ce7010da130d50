"""Limits on key verifications: each one is a provider call made for an anonymous caller.

A key the gateway has no verdict for costs one read-only provider call (security issue item 3):
without a limit the gateway is an oracle for stolen keys, and enough calls make the provider
answer 429 for every key the gateway has not cached yet. So verifications (cache misses only: a
cached verdict, an issued key and a request that shares an in-flight check cost nothing here) are
limited by two token buckets, one per client and one for the whole process. Past either, 429
``rate_limited`` with ``Retry-After`` (seconds until a verification is allowed again).

The client is the TCP peer address. ``X-Forwarded-For`` is read only when the peer is one of
``trusted_proxies`` (then the client is the rightmost address not itself trusted), because anyone
can write that header. IPv6 clients are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxy.errors import GatewayError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_minute`` tokens a minute, at most ``burst`` saved up."""

    per_minute: float
    burst: int


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated

    def refill(self, rate: Rate, now: float) -> None:
        self.tokens = min(float(rate.burst), self.tokens + (now - self.updated) * rate.per_minute / 60.0)
        self.updated = now

    def wait(self, rate: Rate) -> float:
        """Seconds until one token is there (0 when one is)."""
        if self.tokens >= 1.0:
            return 0.0
        if rate.per_minute <= 0:
            return math.inf
        return (1.0 - self.tokens) * 60.0 / rate.per_minute


class VerificationLimiter:
    def __init__(
        self,
        *,
        per_client: Rate,
        overall: Rate,
        trusted_proxies: Sequence[str] = (),
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.overall = overall
        self.trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self.max_clients = max_clients
        self.clock = clock
        self._global = _Bucket(float(overall.burst), clock())
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, peer: str | None, forwarded_for: str | None) -> None:
        """Take one verification for this client, or raise 429 with ``Retry-After``."""
        now = self.clock()
        client = self.client(peer, forwarded_for)
        bucket = self._clients.get(client)
        if bucket is None:
            bucket = self._clients[client] = _Bucket(float(self.per_client.burst), now)
            if len(self._clients) > self.max_clients:
                # A forgotten client starts again with a full bucket; the global bucket still caps them all.
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
        bucket.refill(self.per_client, now)
        self._global.refill(self.overall, now)
        wait = max(bucket.wait(self.per_client), self._global.wait(self.overall))
        if wait > 0:
            raise GatewayError(
                429, "rate_limited",
                "Too many API keys to verify with the provider; nothing was sent. Retry later.",
                outcome="not_sent", reason="verification_rate_limited",
                headers={"retry-after": str(max(1, math.ceil(min(wait, 3600.0))))},
            )
        bucket.tokens -= 1.0
        self._global.tokens -= 1.0

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address a verification is counted against (see the module docstring)."""
        address = _address(peer)
        if address is None:
            return peer or "unknown"
        if forwarded_for and self._trusted(address):
            for hop in reversed(forwarded_for.split(",")):
                hop_address = _address(hop.strip())
                if hop_address is None:
                    return hop.strip()[:64] or "unknown"
                address = hop_address
                if not self._trusted(hop_address):
                    break
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def _trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.trusted)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
