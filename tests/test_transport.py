"""proxy/server.py: a response's writes leave in one go, and nothing pending is lost or reordered."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson

from proxy.transport import CoalescingTransport
from tests.conftest import Keys
from tests.support.servers import Gateway


class Recording(asyncio.Transport):
    """The wrapped transport: records each write and whether it was closed or aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_of_one_iteration_leave_as_one() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
    transport.write(b'{"ok":')
    transport.writelines([b"true", b"}"])
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 35
    await asyncio.sleep(0)
    assert inner.writes == [b'HTTP/1.1 201 Created\r\n\r\n{"ok":true}']
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"next"]


async def test_a_large_write_goes_out_at_once_so_back_pressure_still_works() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop(), flush_bytes=1024)
    transport.write(b"head")
    transport.write(b"x" * 2000)
    assert inner.writes == [b"head" + b"x" * 2000]


async def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    closed, aborted = Recording(), Recording()
    loop = asyncio.get_running_loop()
    first, second = CoalescingTransport(closed, loop), CoalescingTransport(aborted, loop)
    first.write(b"last words")
    first.close()
    assert (closed.writes, closed.closed) == ([b"last words"], True)
    second.write(b"dropped")
    second.abort()
    await asyncio.sleep(0)
    assert (aborted.writes, aborted.aborted) == ([], True)


async def test_nothing_is_written_to_a_closing_transport() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"late")
    inner.closed = True  # the peer went away in the meantime
    await asyncio.sleep(0)
    assert inner.writes == []


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _request(key: str, body: bytes, connection: str) -> bytes:
    return (b"POST /v3/contacts HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"x-api-key: " + key.encode() + b"\r\nConnection: " + connection.encode() +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_pipelined_requests_get_whole_responses_in_order_before_the_close(gateway: Gateway, keys: Keys) -> None:
    """Three requests in one packet, the last asking to close: three complete answers, then EOF."""
    bodies = [orjson.dumps({"test_mode": True, "phone_number": f"+1555555010{n}"}) for n in range(3)]
    raw = b"".join(_request(keys.sent_live, body, "close" if n == 2 else "keep-alive")
                   for n, body in enumerate(bodies))
    answer = _exchange(gateway.port, raw)
    parts = answer.split(b"HTTP/1.1 ")[1:]
    assert len(parts) == 3
    for n, part in enumerate(parts):
        head, _, body = part.partition(b"\r\n\r\n")
        assert head.startswith(b"201 ")
        assert orjson.loads(body)["data"]["phone_number"] == f"+1555555010{n}"
