"""The same naive reverse proxy with one ``aiohttp.ClientSession`` (default connector) instead of httpx.

The live path must reach 0.75x this: the gateway's extra work (route, auth, key swap, test-mode
re-check, header filtering, streaming, a log line, metrics) has to fit in the remaining 25 %.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9000")
_FORWARDED = ("content-type", "x-api-key", "authorization")
sessions: dict[str, aiohttp.ClientSession] = {}


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    sessions["upstream"] = aiohttp.ClientSession()
    yield
    await sessions.pop("upstream").close()


async def proxy(request: Request) -> Response:
    headers = {name: value for name in _FORWARDED if (value := request.headers.get(name)) is not None}
    async with sessions["upstream"].request(
        request.method, UPSTREAM + request.url.path, data=await request.body(), headers=headers,
    ) as upstream:
        content = await upstream.read()
        return Response(content, status_code=upstream.status, media_type=upstream.headers.get("content-type"))


app = Starlette(routes=[Route("/{path:path}", proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])],
                lifespan=lifespan)
