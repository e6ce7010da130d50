"""The provider's side of forwarding: each policy's origin, and the client session that reaches it.

:mod:`proxy.forward` is the only code that sends a request to a provider; this module holds what it sends
with. aiohttp is used directly because it measured ~12x faster than httpx's default transport and ~2.3x
faster than the httpx API over an aiohttp transport on this kind of machine
(shared/reference/performance.md). Webhook delivery has a client of its own (:mod:`proxy.webhooks.sender`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from proxy.policy.model import Policy
from proxy.settings import Limits
from proxy.target import METHOD_OVERRIDE_HEADERS

# RFC 9110 §7.6.1 connection-specific fields, plus the de-facto ones proxies also strip.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
    b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
# Set by the client library from the URL and body, or by the gateway itself.
_REQUEST_DROP = frozenset({b"host", b"content-length", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
                           *(name.encode() for name in METHOD_OVERRIDE_HEADERS)})
REQUEST_DROP_ALL = HOP_BY_HOP | _REQUEST_DROP
WHOLE_BODY_MAX = 64 * 1024  # larger bodies, or bodies of unknown length, stream
_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(part.strip().lower() for part in value.split(b","))
    return named


@dataclass(frozen=True, slots=True)
class Upstream:
    """A policy's base URL, parsed once at start-up: the text paths are joined onto, and the scheme and
    authority (host, port, and no userinfo) every joined URL must still have."""

    base: str
    scheme: str
    authority: str

    @classmethod
    def of(cls, policy: Policy) -> Upstream:
        url = URL(policy.base_url, encoded=True)  # the loader checked its form (http(s), no userinfo)
        return cls(policy.base_url, url.scheme, url.raw_authority)

    def url(self, path: str, query: bytes) -> URL | None:
        """``path`` (a clean origin-form path) and ``query`` joined onto the base, or None unless the result
        is still at the policy's origin."""
        if path[:1] != "/" or path[:2] == "//":  # only such a path could begin an authority
            return None
        text = self.base + path
        if query:
            text += "?" + query.decode("latin-1")
        url = URL(text, encoded=True)
        if url.raw_authority != self.authority or url.scheme != self.scheme:
            return None
        return url


def open_session(policy: Policy, limits: Limits) -> aiohttp.ClientSession:
    """The pooled client for one policy: connect deadline, bounded response heads, nothing from the
    environment (proxies, netrc), no cookies, no decompression, and never a second send."""
    connect = policy.connect_timeout or limits.upstream_connect_timeout
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limits.upstream_pool_size,
                                       keepalive_timeout=limits.upstream_keepalive_seconds),
        timeout=aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=None),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_SKIP_AUTO,
        trust_env=False,
        max_field_size=limits.upstream_max_header_bytes,
        max_line_size=limits.upstream_max_header_bytes,
        max_headers=limits.upstream_max_headers,
    )
    # aiohttp resends an idempotent request once when a reused connection drops under it; a provider may
    # already have acted on a PUT or DELETE, so the gateway never resends anything. There is no public
    # setting: tests/e2e/test_hostile_provider.py pins the behaviour through the real server.
    session._retry_connection = False
    return session
