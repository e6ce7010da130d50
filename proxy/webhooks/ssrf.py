"""The SSRF guard for subscription URLs (``shared/reference/reliability.md``, "Outbound URLs").

A URL is checked when a subscription is made and again before every attempt:

* parsed with the parser that sends (yarl, aiohttp's): only ``http``/``https``; no userinfo (an ``@``
  anywhere in the authority); no odd numeric hosts (``2130706433``, ``0x7f000001``, ``127.1``: a host
  whose last label is a number must be a canonical dotted quad, the WHATWG "ends in a number" rule);
  no ``localhost`` names (RFC 6761 §6.3); host names of letters, digits, ``-``, ``_`` and dots only;
* resolved at send time, and refused if **any** address is not global — loopback, private, link-local
  (169.254.169.254), CGNAT 100.64/10, multicast, reserved, unspecified — after unwrapping the IPv4
  address inside IPv4-mapped, 6to4 and NAT64 forms (Python 3.11 reports ``64:ff9b::7f00:1`` and
  ``2002:7f00:1::1`` as global although they carry 127.0.0.1); deprecated IPv4-compatible (``::/96``)
  and local-use NAT64 (``64:ff9b:1::/48``, RFC 8215) addresses are refused outright;
* connected to: the client asks :class:`PinnedResolver`, which answers only with the addresses the
  guard checked for this attempt, so there is no second lookup for a rebinding name to change.

Private ranges are reachable only through an explicit allowlist
(``TESTMODE_PROXY_WEBHOOK_ALLOW_PRIVATE=127.0.0.1/32,::1/128``), never by default: tests and local
development use it. A hosts file (``TESTMODE_PROXY_WEBHOOK_HOSTS``, ``/etc/hosts`` format, re-read when
it changes) answers for the names it lists before the system resolver does; its answers are checked
like any other.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use: never a public destination
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 §2.5.5.1, deprecated
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


class Refused(Exception):
    """A URL the guard will not call; ``reason`` is a bounded code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Target:
    url: yarl.URL
    host: str  # as the client will send it (IDNA-encoded, no brackets)
    port: int
    literal: IPAddress | None  # the host, when it is an IP address


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to (empty or OSError when it does not)."""
        ...


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HostsFile:
    """Names listed in a hosts file (``ADDRESS NAME…`` lines) answer from it; others ask ``fallback``."""

    def __init__(self, path: Path, fallback: Resolver) -> None:
        self.path = path
        self.fallback = fallback
        self._mtime: float | None = None
        self._names: dict[str, list[str]] = {}

    def _load(self) -> dict[str, list[str]]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return {}
        if mtime != self._mtime:
            names: dict[str, list[str]] = {}
            for line in self.path.read_text().splitlines():
                address, *aliases = line.split("#", 1)[0].split() or [""]
                for alias in aliases:
                    names.setdefault(alias.lower().rstrip("."), []).append(address)
            self._names, self._mtime = names, mtime
        return self._names

    async def resolve(self, host: str, port: int) -> list[str]:
        listed = self._load().get(host.lower().rstrip("."))
        return list(listed) if listed is not None else await self.fallback.resolve(host, port)


def parse_allowlist(text: str) -> tuple[IPNetwork, ...]:
    """``127.0.0.1/32,::1/128`` → networks; a bad entry is a ValueError naming it."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=True))
            except ValueError as exc:
                raise ValueError(f"not a network: {item!r} ({exc})") from exc
    return tuple(networks)


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared address space (CGNAT)"
    if address.is_private:
        return "private"
    return "reserved"


def effective(address: IPAddress) -> IPAddress | None:
    """The address a connection really reaches: the IPv4 address inside an IPv4-mapped, 6to4 or NAT64
    form; None for forms refused outright (IPv4-compatible, local-use NAT64)."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64_LOCAL or (address in _V4_COMPATIBLE and int(address) > 1):
        return None
    return address


class Guard:
    @classmethod
    def configured(cls, allow: str, hosts: Path | None) -> Guard:
        """The guard the settings ask for: the system resolver (behind a hosts file, if given) and the allowlist."""
        resolver: Resolver = SystemResolver()
        if hosts is not None:
            resolver = HostsFile(hosts, resolver)
        return cls(resolver, parse_allowlist(allow))

    def __init__(self, resolver: Resolver, allow: Sequence[IPNetwork] = ()) -> None:
        self.resolver = resolver
        self.allow = tuple(allow)

    def _allowed(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allow)

    def check_address(self, address: IPAddress) -> None:
        inner = effective(address)
        if self._allowed(address) or (inner is not None and self._allowed(inner)):
            return
        if inner is None:
            raise Refused("non_global_address", f"{address} is a deprecated or local-use IPv6 form")
        if not inner.is_global or inner.is_multicast:
            shown = f"{address} ({inner}, {_kind(inner)})" if inner != address else f"{address} ({_kind(inner)})"
            raise Refused("non_global_address", f"{shown} is not a public address")

    def parse(self, url: str) -> Target:
        """The URL's syntax checks; raises :class:`Refused`."""
        if len(url) > 2048:
            raise Refused("invalid_url", "the URL is longer than 2048 characters")
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise Refused("scheme", "only http:// and https:// URLs can receive webhooks")
        authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
        if "@" in authority:
            raise Refused("userinfo", "a webhook URL may not carry a user name or password")
        try:
            parsed = yarl.URL(url)
        except ValueError as exc:
            raise Refused("invalid_url", f"not a URL: {exc}") from exc
        host = (parsed.raw_host or "").lower()
        if not parsed.is_absolute() or not host:
            raise Refused("invalid_url", "the URL has no host")
        port = parsed.port
        if port is None or not 0 < port < 65536:
            raise Refused("invalid_url", "the URL's port is out of range")
        literal: IPAddress | None = None
        if ":" in host:  # an IPv6 literal (yarl strips the brackets)
            try:
                literal = ipaddress.IPv6Address(host)
            except ValueError as exc:  # zone ids (fe80::1%eth0) included
                raise Refused("invalid_url", f"not an IPv6 address: {host}") from exc
        else:
            name = host.rstrip(".")
            if _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
                try:
                    literal = ipaddress.IPv4Address(name)  # canonical dotted quad only (no 127.1, 0x7f…, 0177…)
                except ValueError as exc:
                    raise Refused("numeric_host", f"{host!r} is not a dotted-quad IPv4 address") from exc
            elif not _NAME.match(name):
                raise Refused("invalid_url", f"{host!r} is not a host name")
            elif name == "localhost" or name.endswith(".localhost"):
                raise Refused("non_global_address", f"{host!r} is a loopback name (RFC 6761)")
        if literal is not None:
            self.check_address(literal)
        return Target(parsed, parsed.raw_host or host, port, literal)

    async def addresses(self, target: Target) -> list[str]:
        """Resolve now and check every address; the ones to connect to, or :class:`Refused`."""
        if target.literal is not None:
            self.check_address(target.literal)
            return [str(target.literal)]
        try:
            found = await self.resolver.resolve(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise Refused("unresolvable", f"{target.host} does not resolve ({exc})") from exc
        if not found:
            raise Refused("unresolvable", f"{target.host} does not resolve")
        checked: list[str] = []
        for text in found:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError as exc:
                raise Refused("unresolvable", f"{target.host} resolved to {text!r}") from exc
            try:
                self.check_address(address)
            except Refused as exc:
                raise Refused(exc.reason, f"{target.host} resolves to {exc.message}") from None
            checked.append(str(address))
        return checked

    async def check(self, url: str) -> Target:
        """Subscription time: the syntax checks and a lookup now (a name must resolve, to public addresses)."""
        target = self.parse(url)
        await self.addresses(target)
        return target


# The addresses the guard checked for the attempt running in this task, by (host, port).
PINNED: contextvars.ContextVar[dict[tuple[str, int], list[str]] | None] = contextvars.ContextVar(
    "webhook_pinned", default=None)


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver for deliveries: the checked addresses of this attempt, never a lookup of its own
    (aiohttp connects to IP-literal hosts without asking; the guard checked those too)."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        pins = PINNED.get() or {}
        addresses = pins.get((host, port))
        if not addresses:
            raise OSError(f"{host}:{port} was not checked by the SSRF guard")
        return [_result(host, address, port) for address in addresses]

    async def close(self) -> None:
        return None


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=socket.IPPROTO_TCP,
                         flags=socket.AI_NUMERICHOST)


def describe(networks: Iterable[IPNetwork]) -> str:
    return ",".join(str(n) for n in networks) or "(none)"
