"""A transport that writes each response in one go (used by :mod:`proxy.server`'s protocol).

uvicorn writes a response's head on ``http.response.start`` and its body on ``http.response.body``:
two ``transport.write()`` calls, and uvloop sends each at once, so every small response costs two
``write(2)`` calls and two TCP segments. Here the connection's transport is wrapped so that writes
made in the same event-loop iteration go out together at the end of it (a ``call_soon``), or at
once when ``flush_bytes`` have gathered (so a streamed body keeps uvloop's back-pressure). Closing
the connection sends what is pending first; aborting it drops it, as an abort does.

Measured on the test-mode path (``python -m bench`` with the tree without it as a variant, 5
repetitions): 86 to 137 µs of CPU per request, against 115 to 177 in the same repetitions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes within one loop iteration leave as one ``write()`` of the wrapped one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, flush_bytes: int = 65536) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._flush_bytes = flush_bytes
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= self._flush_bytes:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def _scheduled_flush(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send everything pending now, in one write."""
        if not self._pending:
            return
        pending, self._pending, self._size = self._pending, [], 0
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending, self._size = [], 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()
