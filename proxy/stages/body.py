"""Stage 5, *body*: read the body under a size cap and parse it as JSON.

uvicorn has no body limit, so bytes are counted here as ``receive()`` yields them: a declared
``Content-Length`` over the cap is refused before reading, a chunked body at the moment it passes.
Mutations must carry JSON (or nothing, which reads as ``{}``): a body the gateway cannot parse
cannot be told apart from a test request, so it is refused, never forwarded.

Reads: ``ctx.route`` (per-route cap), ``ctx.headers``. Writes: ``ctx.body_bytes``, ``ctx.body``.
Ends a request with: 413 ``payload_too_large``; 408 ``request_timeout`` (a body still arriving
after ``body_timeout``, 30 s: a slow client must not hold a slot); 415 ``unsupported_media_type``;
400 ``invalid_json`` (malformed, not an object, nested deeper than the limit); 400 ``ambiguous_test_mode``
(a key on a test flag's path given twice or not spelled exactly: :mod:`proxy.flagkeys`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy import flagkeys
from proxy.context import begin
from proxy.errors import GatewayError, bad_request
from proxy.policy.model import Policy
from proxy.verdict import SAFE_METHODS


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, "payload_too_large", f"The request body is larger than {limit} bytes; nothing was sent.")


def _disconnected() -> GatewayError:
    return GatewayError(400, "bad_request", "The client disconnected before sending the whole body.",
                        reason="client_disconnected")


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":  # what nearly every client sends: no parsing
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


class Body:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_depth: int,
        body_timeout: float = 30.0,
        max_json_values: int = 500_000,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self.max_json_values = max_json_values
        self.max_json_containers = max_json_values // 5
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "body")
        policy = ctx.policy
        assert policy is not None
        limit = self.max_body_bytes
        if ctx.route is not None and ctx.route.max_body_bytes is not None:
            limit = ctx.route.max_body_bytes
        headers = ctx.headers
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise GatewayError(400, "bad_request", "Content-Length is not a number.")
            if int(declared) > limit:
                raise _too_large(limit)
        mutation = scope["method"] not in SAFE_METHODS
        if mutation or declared not in (None, "0") or "transfer-encoding" in headers:
            # The common case, inline: the whole body in the first message.
            first = await receive()
            if first["type"] == "http.disconnect":
                raise _disconnected()
            raw: bytes = first.get("body", b"")
            if first.get("more_body", False):
                raw = await self._read_rest(receive, raw, limit)
            elif len(raw) > limit:
                raise _too_large(limit)
            ctx.body_bytes = raw
        else:
            raw = b""
        if not mutation and not raw:
            await self.app(scope, receive, send)
            return
        if not raw or raw.isspace():
            ctx.body = {}
        else:
            if not _is_json(headers.get("content-type", "")):
                raise GatewayError(415, "unsupported_media_type",
                                   "Send the body as JSON with 'Content-Type: application/json'.")
            ctx.body = self._parse(raw, policy)
        await self.app(scope, _replay(raw), send)

    async def _read_rest(self, receive: Receive, first: bytes, limit: int) -> bytes:
        chunks: list[bytes] = [first]
        size = len(first)
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await self._receive_chunk(receive)
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise GatewayError(408, "request_timeout", f"The body did not arrive within {self.body_timeout:g}s.",
                               reason="slow_client") from None

    @staticmethod
    async def _receive_chunk(receive: Receive) -> Message:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _disconnected()
        return message

    def _parse(self, raw: bytes, policy: Policy) -> Any:
        if len(raw) > _COUNT_VALUES_ABOVE:
            self._check_values(raw)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            detail = str(exc).split(":", 1)[0]
            raise bad_request("invalid_json", f"The body is not valid JSON: {detail}.") from exc
        if not isinstance(body, dict):
            raise bad_request("invalid_json", "The body must be a JSON object.")
        if raw.count(b"{") + raw.count(b"[") > self.max_depth and _depth_exceeds(body, self.max_depth):
            raise bad_request("invalid_json", f"The body is nested deeper than {self.max_depth} levels.")
        if (found := flagkeys.check(raw, policy.flag_paths)) is not None:
            raise bad_request("ambiguous_test_mode", found.message, field=found.field)
        return body

    def _check_values(self, raw: bytes) -> None:
        """Refuse (413) a body with more JSON values or containers than the process may parse. Separators
        inside strings count too: an overcount refuses, it never forwards."""
        values = raw.count(b",") + raw.count(b":")
        containers = raw.count(b"{") + raw.count(b"[")
        if values > self.max_json_values or containers > self.max_json_containers:
            raise GatewayError(413, "payload_too_large",
                               f"The body holds more than {self.max_json_values} JSON values (or "
                               f"{self.max_json_containers} objects and arrays); nothing was sent.",
                               reason="too_many_values")


# Parsing costs memory by the number of values, not bytes: 28 MiB of ``[0,0,…]`` parsed grows a process by
# ~235 MiB and takes 1.5 s, while 23 MiB of one base64 string costs ~25 MiB and 57 ms. Bodies this large
# (a mail with attachments) are counted first, at memchr speed, so a route may accept 30 MiB of
# attachment without accepting 30 MiB of tiny values.
_COUNT_VALUES_ABOVE = 64 * 1024


def _replay(body: bytes) -> Receive:
    """A ``receive`` for later stages that yields the body already read, then waits for disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
