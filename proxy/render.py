"""The one place that renders errors, and the one helper that sends a JSON response.

Provider routes answer in the provider's dialect (the policy's ``dialect.error`` template), so the
official clients parse them; everything else (no policy matched, the gateway's own routes) answers
RFC 9457 problem details. Every response is JSON with a JSON content type.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Send

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.metrics import Metrics

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 409: "Conflict", 413: "Content Too Large", 414: "URI Too Long",
           415: "Unsupported Media Type",
           422: "Unprocessable Content", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


async def send_json(
    send: Send,
    ctx: RequestContext,
    status: int,
    body: bytes | None,
    headers: list[tuple[bytes, bytes]],
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Send a complete response; ``body=None`` sends no body and no content type (204).

    Records ``ctx.status`` first: every response start is recorded in the context (here, or in
    :mod:`proxy.forward`), which is how *observe* knows a response has begun.
    uvicorn's own Date header is off (so a provider's passes through unchanged); ours is added here.
    """
    ctx.status = status
    headers.append((b"date", clock.http_date()))
    if body is None:
        if status != 204:  # a body-less 202 says so as providers do (SendGrid: Content-Length: 0), not chunked
            headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, ctx: RequestContext, error: GatewayError, metrics: Metrics, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Answer ``error``: count it, note it in the context for the log line, render it, send it.

    *observe* calls this for whatever was raised; *idempotency* calls it for an error it must record
    (its ``send`` stores the bytes before they leave), so both answer exactly alike.
    """
    ctx.reject_reason = error.reason
    if error.outcome:
        ctx.outcome = error.outcome
    stage = ctx.marks[-1][0] if ctx.marks else "observe"
    metrics.rejection(ctx.policy.name if ctx.policy else "none", stage, error.reason)
    ctx.answered_by = "gateway"
    body, headers = error_response(error, ctx, clock)
    await send_json(send, ctx, error.status, body, headers, clock)


def error_response(
    error: GatewayError, ctx: RequestContext, clock: Clock = SYSTEM_CLOCK
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Body and headers for ``error`` in the dialect of the request's policy (or problem details)."""
    headers: list[tuple[bytes, bytes]] = [(b"x-request-id", ctx.request_id.encode())]
    policy = ctx.policy
    if policy is None:
        body = orjson.dumps(problem_details(error, ctx.request_id))
        headers.append((b"content-type", PROBLEM_JSON))
    else:
        dialect = policy.dialect
        code = dialect.codes.get(error.code, error.code)
        message = dialect.messages.get(error.code, error.message)
        fields: dict[str, list[str]] = {}
        for item in error.items:
            fields.setdefault(item.field or "body", []).append(item.message)
        items = [{"field": i.field, "message": i.message, "help": i.help} for i in error.items]
        if not items:
            items = [{"field": None, "message": message, "help": None}]
        env: dict[str, Any] = {
            "error": {"status": error.status, "code": code, "message": message, "fields": fields or None,
                      "items": items, "outcome": error.outcome},
            "request_id": ctx.request_id,
            "now": clock.utc_iso(),
        }
        body = orjson.dumps(dialect.error(env))
        headers.append((b"content-type", JSON))
        headers.extend(dialect.headers_for(error.status, error.code))
        if ctx.test_mode:
            headers.extend(policy.test_headers)
    if error.outcome:
        headers.append((b"x-gateway-outcome", error.outcome.encode()))
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
    return body, headers


def problem_details(error: GatewayError, request_id: str) -> dict[str, Any]:
    """RFC 9457: ``type``/``title``/``status``/``detail``, plus our ``code``, ``request_id`` and extras."""
    doc: dict[str, Any] = {
        "type": f"urn:testmode-proxy:error:{error.code}",
        "title": _TITLES.get(error.status, "Error"),
        "status": error.status,
        "detail": error.message,
        "code": error.code,
        "request_id": request_id,
    }
    if error.outcome:
        doc["outcome"] = error.outcome
    if error.items:
        doc["errors"] = [{"field": i.field, "message": i.message} for i in error.items]
    return doc
