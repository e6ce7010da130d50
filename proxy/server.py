"""The HTTP/1.1 server protocol: uvicorn's httptools protocol with an edge's defences.

uvicorn answers what its parser refuses in plain text, bounds neither the request head's size nor the
time a client may take to send it, and only times out connections that are idle *between* requests.
This subclass (``testmode-proxy serve`` hands it to uvicorn as the ``http`` protocol) adds, with the
defaults of Envoy's edge guide, nginx and HAProxy (``shared/reference/reliability.md``):

* **Every refusal is JSON**: RFC 9457 problem details (no policy is known before routing), then the
  connection is closed. llhttp already refuses the framing tricks of request smuggling — a
  ``Content-Length`` beside ``Transfer-Encoding``, ``Content-Length`` twice, a space before the colon,
  obs-fold, a bare LF — as malformed (400); a ``Transfer-Encoding`` other than ``chunked`` is 501
  (RFC 9112 §6.1: a server that does not understand a transfer coding answers 501), refused by the
  route stage before any body is read (a dict lookup there, not a call per header field here).
* **A bounded request head**: the request target at most ``max_request_line`` bytes (414), the header
  block at most ``max_head_bytes`` bytes and ``max_head_headers`` fields (431), counted per chunk
  received while the head is incomplete, so a client cannot grow the server's memory before the route
  stage's own 16 KiB / 100-field limits (431 in the provider's dialect) ever see the request.
* **A header deadline** (slowloris): a connection whose request head is not complete within
  ``header_timeout`` seconds of its first byte (or of the connection, if nothing came) is answered
  408 and closed. One sweep per event loop checks every connection four times a second, so no timer
  is armed and cancelled per request.
* Each response's writes leave in one ``write(2)`` (:class:`proxy.transport.CoalescingTransport`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from proxy.errors import GatewayError
from proxy.render import problem_details
from proxy.transport import CoalescingTransport

log = structlog.get_logger("proxy.server")


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    header_timeout: float = 10.0
    max_request_line: int = 8192
    max_head_bytes: int = 65536
    max_head_headers: int = 200


class _Refused(Exception):
    """Raised inside a parser callback: the request is answered ``error`` and the connection closed."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def refusal_bytes(error: GatewayError) -> bytes:
    """A complete ``Connection: close`` response with a problem-details body."""
    request_id = "req_" + os.urandom(12).hex()
    body = orjson.dumps(problem_details(error, request_id))
    head = [STATUS_LINE[error.status], b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n", b"x-request-id: " + request_id.encode() + b"\r\n",
            b"connection: close\r\n"]
    head.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in error.headers.items())
    return b"".join([*head, b"\r\n", body])


def _head_too_large() -> GatewayError:
    return GatewayError(431, "headers_too_large", "The request headers are too many or too large.")


class _Sweeper:
    """Closes connections whose request head is overdue; one per event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.25) -> None:
        self.loop = loop
        self.interval = interval
        self.connections: weakref.WeakSet[HttpProtocol] = weakref.WeakSet()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, protocol: HttpProtocol) -> None:
        self.connections.add(protocol)
        if self.handle is None:
            self.handle = self.loop.call_later(self.interval, self.sweep)

    def sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        for protocol in list(self.connections):
            started = protocol.head_started
            if started is not None and now - started > protocol.limits.header_timeout:
                protocol.head_overdue()
        if self.connections:
            self.handle = self.loop.call_later(self.interval, self.sweep)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the defences in the module docstring."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()
    _sweepers: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_started: float | None = None
        self._head_bytes = 0

    @classmethod
    def with_limits(cls, limits: EdgeLimits) -> type[HttpProtocol]:
        """This protocol with ``limits`` (uvicorn builds protocols from a class, so they are class data)."""
        return type("HttpProtocol", (cls,), {"limits": limits})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)
        self.head_started = self.loop.time()
        sweeper = self._sweepers.get(self.loop)
        if sweeper is None:
            sweeper = self._sweepers[self.loop] = _Sweeper(self.loop)
        sweeper.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_started = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # uvicorn's own handling; the gateway runs with ws="none"
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self.refuse(refused.error)
            else:
                # llhttp's reason ("Duplicate Content-Length", "Invalid header token") is safe to echo:
                # it names the rule, never the client's bytes.
                reason = str(exc).split(":", 1)[-1].strip() or "malformed request"
                self.refuse(GatewayError(400, "bad_request", f"Malformed HTTP request: {reason}. Nothing was sent.",
                                         reason="malformed_http"))
            return
        if self.head_started is not None:
            # The head is still incomplete after this chunk: count what it has cost so far. Counted per
            # chunk, not per header field (that would be a Python call per field on every request).
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes or (
                self.headers is not None and len(self.headers) > self.limits.max_head_headers
            ):
                self.refuse(_head_too_large())

    def send_400_response(self, msg: str) -> None:  # uvicorn's own callers, if any remain
        self.refuse(GatewayError(400, "bad_request", "Malformed HTTP request. Nothing was sent.",
                                 reason="malformed_http"))

    def refuse(self, error: GatewayError) -> None:
        """Answer ``error`` (if no response is under way on this connection) and close."""
        self.head_started = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(refusal_bytes(error))
        self.transport.close()

    def head_overdue(self) -> None:
        log.info("request_head_timeout", seconds=self.limits.header_timeout)
        self.refuse(GatewayError(408, "request_timeout",
                                 f"The request head did not arrive within {self.limits.header_timeout:g}s.",
                                 reason="slow_client"))

    # ---------------------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        self.head_started = self.loop.time()
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if len(url) + len(self.url) > self.limits.max_request_line:
            raise _Refused(GatewayError(414, "uri_too_long",
                                        f"The request target is longer than {self.limits.max_request_line} bytes."))
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self.head_started = None
        if len(self.headers) > self.limits.max_head_headers:  # a head that arrived whole in one chunk
            raise _Refused(_head_too_large())
        super().on_headers_complete()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the gateway the moment shutdown begins (SIGTERM): it stops being ready
    and starts draining its own background work (due webhook deliveries) while uvicorn stops accepting
    and lets in-flight requests finish, both within the drain deadline."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.on_shutdown()
        await super().shutdown(sockets)
