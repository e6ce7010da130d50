"""The floor under the gateway: a raw ASGI callable, orjson parse + dump, no framework.

The gateway's provider path is raw ASGI too (no Starlette routing), so the gap between this app and
the test-mode path is exactly what the pipeline's stages cost.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = orjson.loads(b"".join(chunks))
    doc = {
        "success": True,
        "data": {"id": os.urandom(16).hex(), "phone": body.get("phone_number"), "template_id": body.get("template_id"),
                 "channel": body.get("channel", "sms"), "status": "pending", "price": 0.01,
                 "created_at": "2024-01-15T10:30:00Z"},
        "error": None,
        "meta": {"request_id": "req_test_" + os.urandom(12).hex(), "timestamp": "2024-01-15T10:30:00Z",
                 "version": "v3"},
    }
    out = orjson.dumps(doc)
    await send({"type": "http.response.start", "status": 201,
                "headers": [*_HEADERS, (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
