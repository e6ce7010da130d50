"""A stand-in provider: a real HTTP server process that records every request it receives.

Run: ``python -m tests.support.provider --port N``. Control endpoints (never recorded):

* ``GET /__records`` — every recorded request: method, path, query, headers, body (base64);
* ``DELETE /__records`` — forget them;
* ``POST /__config`` — ``{"valid_keys": [...], "me_status": 200|401|500|null, "script": [...]}``.

``script`` is a list of steps, one taken by each following request to a provider path (not the key
checks ``/v3/me`` and ``/v3/scopes``), in order; once it is used up, the default behaviour below returns.
A step is ``{"delay": s}`` (wait, then answer as usual), ``{"status": n, "headers": {...}, "body": {...}}``
(answer that, optionally after ``delay``) or ``{"hang": true}`` (accept the request and never answer).

Behaviour of provider paths:

* ``GET /v3/me`` (Sent) and ``GET /v3/scopes`` (SendGrid): 200 for a key in ``valid_keys``
  (x-api-key or bearer), else 401 (``me_status`` overrides the status when set);
* ``GET /__big/<n>`` streams ``n`` bytes in 64 KiB chunks; ``/__hang/<seconds>`` answers late;
* ``/__reset`` sends its headers (a 200 promising 1 KiB), then closes the connection mid-body;
  ``/__reset_big`` the same promising 1 MiB, after 128 KiB
  (an ASGI app cannot drop a connection before its headers: uvicorn would answer 500 instead);
* anything else: SendGrid's ``/v3/mail/send`` answers 202 with ``X-Message-Id``; other paths
  answer 200 (GET) or 201 in Sent's envelope with an ``echo`` of what was received.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
from typing import Any

import orjson
import uvicorn

RECORDS: list[dict[str, Any]] = []
CONFIG: dict[str, Any] = {"valid_keys": [], "me_status": None, "script": []}


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(send: Any, status: int, doc: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps(doc)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path: str = scope["path"]
    method: str = scope["method"]
    body = await _read(receive)
    if path == "/__records":
        if method == "DELETE":
            RECORDS.clear()
        await _json(send, 200, RECORDS)
        return
    if path == "/__config":
        CONFIG.update(orjson.loads(body))
        await _json(send, 200, CONFIG)
        return
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    RECORDS.append({
        "method": method, "path": path, "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body": base64.b64encode(body).decode(),
    })
    if path in ("/__reset", "/__reset_big"):
        big = path == "/__reset_big"  # promises 1 MiB and drops after 128 KiB: past the gateway's read-whole size
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"1048576" if big else b"1024")]})
        await send({"type": "http.response.body", "body": b"x" * 131072 if big else b'{"partial": ',
                    "more_body": True})
        raise RuntimeError("reset on purpose")  # after the headers, uvicorn can only close the connection
    if path.startswith("/__hang/"):
        await asyncio.sleep(float(path.rsplit("/", 1)[1]))
        await _json(send, 200, {"late": True})
        return
    if path.startswith("/__big/"):
        size = int(path.rsplit("/", 1)[1])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(size).encode())]})
        chunk = b"x" * 65536
        sent = 0
        while sent < size:
            piece = chunk[: min(65536, size - sent)]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": sent < size})
        return
    key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
    key_check = method == "GET" and (path.endswith("/v3/me") or path.endswith("/v3/scopes"))
    if CONFIG["script"] and not key_check:
        step = CONFIG["script"].pop(0)
        if step.get("hang"):  # accepted, never answered: wait until the client gives up and hangs up
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await asyncio.sleep(float(step.get("delay", 0)))
        if "status" in step:
            extra = [(k.lower().encode(), str(v).encode()) for k, v in step.get("headers", {}).items()]
            await _json(send, step["status"], step.get("body", {}), headers=extra)
            return
    if path.endswith("/v3/me") and method == "GET":
        status = CONFIG["me_status"] or (200 if key in CONFIG["valid_keys"] else 401)
        ok = 200 <= status < 300
        await _json(send, status, {"success": ok, "data": {"id": "acct_live"} if ok else None,
                                   "error": None if ok else {"code": "AUTH_001", "message": "bad key"},
                                   "meta": {"request_id": "req_live_me", "version": "v3"}})
        return
    if path.endswith("/v3/scopes") and method == "GET":  # SendGrid's read-only key check, same logic as /v3/me
        status = CONFIG["me_status"] or (200 if key in CONFIG["valid_keys"] else 401)
        ok = 200 <= status < 300
        await _json(send, status, {"scopes": ["mail.send"]} if ok else
                    {"errors": [{"field": None, "message": "authorization required"}]})
        return
    if path.endswith("/v3/mail/send"):
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"x-message-id", b"standin-" + os.urandom(6).hex().encode())]})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 200 if method in ("GET", "HEAD") else 201
    await _json(send, status, {
        "success": True,
        "data": {"echo": {"method": method, "path": path, "size": len(body)}, "live": True},
        "error": None,
        "meta": {"request_id": "req_live_standin", "timestamp": "2024-01-15T10:30:00Z", "version": "v3"},
    }, headers=[(b"x-request-id", b"req_live_standin"), (b"x-standin", b"1")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
