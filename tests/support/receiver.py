"""A webhook receiver on 127.0.0.1: records every delivery and answers from a script.

It runs an aiohttp server on a thread of its own (its own event loop), so sync end-to-end tests and
async in-process tests use it alike. Answers come from ``script`` (a list of :class:`Answer`, used in
order, one per request), then ``default``. Signatures are not checked here: tests verify them with
code of their own (``hmac`` for Blueticked's, the ``standardwebhooks`` package for Standard Webhooks).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (real time)


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def event_id(self) -> str:
        import orjson

        value: str = orjson.loads(self.body)["id"]
        return value


class Receiver:
    def __init__(self) -> None:
        self.port = 0
        self.received: list[Delivery] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.received)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.script.clear()
            self.default = Answer()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block (real time) until ``count`` deliveries arrived; the deliveries either way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.005)
        return self.deliveries()

    async def until(self, count: int, within: float = 10.0) -> list[Delivery]:
        """Wait (real time, polling the other thread's list) until ``count`` deliveries arrived."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and len(self.received) < count:  # noqa: ASYNC110 - another thread fills it
            await asyncio.sleep(0.005)
        return self.deliveries()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.received.append(Delivery(request.path, {k.lower(): v for k, v in request.headers.items()}, body,
                                          time.time()))
            answer = self.script.pop(0) if self.script else self.default
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.json_response({"ok": answer.status < 300}, status=answer.status, headers=answer.headers)


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A running receiver for the duration of the block."""
    recv = Receiver()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner: web.AppRunner | None = None

    async def start() -> None:
        nonlocal runner
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recv._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        recv.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="webhook-receiver", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield recv
    finally:
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
