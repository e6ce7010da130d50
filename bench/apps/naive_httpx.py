"""A naive reverse proxy: Starlette + one ``httpx.AsyncClient`` with its default pool and transport.

What a first attempt looks like; the live path must beat it by 10x. Upstream from ``BENCH_UPSTREAM``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9000")
_FORWARDED = ("content-type", "x-api-key", "authorization")
clients: dict[str, httpx.AsyncClient] = {}


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    clients["upstream"] = httpx.AsyncClient(base_url=UPSTREAM)
    yield
    await clients.pop("upstream").aclose()


async def proxy(request: Request) -> Response:
    headers = {name: value for name in _FORWARDED if (value := request.headers.get(name)) is not None}
    upstream = await clients["upstream"].request(
        request.method, request.url.path, content=await request.body(), headers=headers,
    )
    return Response(upstream.content, status_code=upstream.status_code,
                    media_type=upstream.headers.get("content-type"))


app = Starlette(routes=[Route("/{path:path}", proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])],
                lifespan=lifespan)
