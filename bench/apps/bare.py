"""The framework floor: Starlette, one POST route, orjson parse + dump, nothing else.

The test-mode path must reach 0.8x this app's throughput: everything the gateway does per request
(auth, validation, templating, one log line, metrics) has to fit in the remaining 20 %.
"""

from __future__ import annotations

import os

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def send_message(request: Request) -> Response:
    body = orjson.loads(await request.body())
    # An envelope shaped like the gateway's test-mode answer, so both dump a comparable document.
    doc = {
        "success": True,
        "data": {"id": os.urandom(16).hex(), "phone": body.get("phone_number"), "template_id": body.get("template_id"),
                 "channel": body.get("channel", "sms"), "status": "pending", "price": 0.01,
                 "created_at": "2024-01-15T10:30:00Z"},
        "error": None,
        "meta": {"request_id": "req_test_" + os.urandom(12).hex(), "timestamp": "2024-01-15T10:30:00Z",
                 "version": "v3"},
    }
    return Response(orjson.dumps(doc), status_code=201, media_type="application/json")


app = Starlette(routes=[Route("/v3/messages", send_message, methods=["POST"])])
