"""A hostile stand-in provider: a raw asyncio server that misbehaves at the HTTP layer, on purpose.

An ASGI app cannot send a garbage status line, 200 headers or a reset before its headers (uvicorn
would answer 500 instead), so this one speaks HTTP/1.1 by hand. It runs on 127.0.0.1 in a thread of
the test process, with its own event loop; every request it receives is recorded with the id of the
connection it came on (so a test can tell a fresh connection from a reused one).

The request path picks the behaviour (``/hostile/<mode>``; any other path is ``ok``):

=================  =========================================================================
mode               what the provider does after reading the whole request
=================  =========================================================================
``ok``             200, a small JSON body, keep-alive
``huge-header``    200 with one header of 100 KiB
``spread-header``  200 with 100 KiB of headers spread over 80 headers of 1.25 KiB
``many-headers``   200 with 200 small headers
``garbage``        a status line that is not HTTP, then closes
``truncated``      200 promising ``Content-Length: 1000``, 10 bytes of it, then closes
``reset``          nothing: a TCP reset (``SO_LINGER`` 0) right after the request arrived
``drip``           a valid small response, one byte every 0.8 s
``hang``           waits until :meth:`HostileProvider.release`, then ``ok``
``redirect``       302 to ``?to=<url>`` (another host), with a small body
``big``            200 with a chunked body of ``?mib=<n>`` MiB (default 100), no length
=================  =========================================================================
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

KIB = 1024
MIB = 1024 * KIB
DRIP_INTERVAL = 0.8
_OK_BODY = b'{"success":true,"data":{"live":true},"error":null,"meta":{"request_id":"req_hostile","version":"v3"}}'


@dataclass(frozen=True)
class Received:
    """One request as the provider read it."""

    connection: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileProvider:
    port: int = 0
    records: list[Received] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _released: asyncio.Event | None = None
    _connections: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def clear(self) -> None:
        self.records.clear()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        """Block until ``count`` requests have arrived (from a thread: ``await asyncio.to_thread(...)``)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.records) >= count, timeout):
                raise TimeoutError(f"{len(self.records)} of {count} requests reached the hostile provider")

    def hold(self) -> None:
        """``hang`` requests wait from now on (the default)."""
        assert self._loop is not None and self._released is not None
        self._loop.call_soon_threadsafe(self._released.clear)

    def release(self) -> None:
        """Every waiting ``hang`` request is answered, and later ones at once, until :meth:`hold`."""
        assert self._loop is not None and self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)

    # ------------------------------------------------------------------------------------ server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = next(self._connections)
        try:
            while True:
                request = await _read_request(reader, connection)
                if request is None:
                    return
                with self._arrived:
                    self.records.append(request)
                    self._arrived.notify_all()
                if not await self._answer(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return  # the gateway hung up: what a hostile provider is for
        except asyncio.CancelledError:
            return  # the provider is stopping with a drip or a hang still under way
        finally:
            with suppress(Exception):
                writer.close()

    async def _answer(self, request: Received, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is done with."""
        url = urlsplit(request.path)
        mode = url.path.removeprefix("/hostile/") if url.path.startswith("/hostile/") else "ok"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if mode == "hang":
            assert self._released is not None
            await self._released.wait()
            mode = "ok"
        if mode == "ok":
            writer.write(_head(200, [(b"content-type", b"application/json")], len(_OK_BODY)) + _OK_BODY)
            await writer.drain()
            return True
        if mode == "huge-header":
            writer.write(_head(200, [(b"x-huge", b"h" * (100 * KIB))], 2) + b"{}")
        elif mode == "spread-header":
            writer.write(_head(200, [(b"x-spread-%d" % n, b"s" * 1280) for n in range(80)], 2) + b"{}")
        elif mode == "many-headers":
            writer.write(_head(200, [(b"x-many-%d" % n, b"1") for n in range(200)], 2) + b"{}")
        elif mode == "garbage":
            writer.write(b"\x00\x01 NOT-HTTP garbage \xff\xfe\r\n\r\n")
        elif mode == "truncated":
            writer.write(_head(200, [(b"content-type", b"application/json")], 1000) + b'{"partial"')
        elif mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        elif mode == "drip":
            for byte in _head(200, [(b"content-type", b"application/json")], len(_OK_BODY)) + _OK_BODY:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(DRIP_INTERVAL)
            return True
        elif mode == "redirect":
            location = query.get("to", "http://elsewhere.invalid/").encode()
            writer.write(_head(302, [(b"location", location), (b"content-type", b"application/json")], 2) + b"{}")
            await writer.drain()
            return True
        elif mode == "big":
            await _chunked(writer, int(query.get("mib", "100")) * MIB)
            return True
        else:
            raise AssertionError(f"unknown hostile mode {mode!r}")
        await writer.drain()
        return False


def _head(status: int, headers: list[tuple[bytes, bytes]], length: int | None) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, b"OK" if status == 200 else b"Found")]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"content-length: %d" % length if length is not None else b"transfer-encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _chunked(writer: asyncio.StreamWriter, size: int) -> None:
    writer.write(_head(200, [(b"content-type", b"application/octet-stream")], None))
    piece = b"%x\r\n" % (64 * KIB) + b"b" * (64 * KIB) + b"\r\n"
    for _ in range(size // (64 * KIB)):
        writer.write(piece)
        await writer.drain()  # the gateway's back-pressure reaches here
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    fields = (line.partition(":") for line in lines[1:] if line)
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(connection, method, path, headers, body)


@contextmanager
def hostile_provider() -> Iterator[HostileProvider]:
    """Run a hostile provider for the duration of the block."""
    provider = HostileProvider()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def main() -> None:
        nonlocal stop
        provider._loop = asyncio.get_running_loop()
        provider._released = asyncio.Event()
        stop = provider._loop.create_future()
        server = await asyncio.start_server(provider._serve, "127.0.0.1", 0, limit=256 * KIB)
        provider.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stop

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True, name="hostile-provider")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the hostile provider did not start")
    try:
        yield provider
    finally:
        assert provider._loop is not None and stop is not None
        provider._loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(timeout=10)
