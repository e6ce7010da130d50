"""The fallback upstream (``--upstream asgi``): a raw ASGI callable answering 201 with a fixed body.

nginx is the default upstream (about 8 µs of CPU per request here against ~50 µs for this app), so
it steals less of the load generator's core; this one needs nothing outside the venv.
"""

from __future__ import annotations

from typing import Any

from bench.workload import UPSTREAM_BODY

_HEADERS = [(b"content-type", b"application/json"), (b"x-request-id", b"req_bench_upstream"),
            (b"content-length", str(len(UPSTREAM_BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    more = True
    while more:  # drain the request body so the connection stays reusable
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 201, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": UPSTREAM_BODY})
