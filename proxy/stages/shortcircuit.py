"""Stage 8, *short-circuit*: answer a test request with the route's synthesized response.

A stage that responds never calls the next app: test requests end here, so they cannot reach
:mod:`proxy.forward`. The one exception is a *read* (GET/HEAD/OPTIONS) with no body, made a test by
the provider's own pass-through sandbox key alone, on a route with no simulated answer: reads have no
side effects and the provider serves its own sandbox data, so it passes on (forward re-checks exactly
this: :func:`proxy.verdict.key_test_read_may_pass`).

Reads: ``ctx.test_mode``, ``ctx.route``, ``ctx.body``, ``ctx.path_params``. Writes: ``ctx.answered_by``,
``ctx.status`` (through the response). Ends a request with: the route's test response; 404
``test_mode_unsupported`` for a test request that has no simulated answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy import logs
from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.context import NO_BODY, begin
from proxy.errors import GatewayError
from proxy.render import JSON, send_json
from proxy.verdict import key_test_read_may_pass

log = structlog.get_logger("proxy.stages")


class ShortCircuit:
    def __init__(self, app: ASGIApp, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "shortcircuit")
        if ctx.test_mode is False:
            await self.app(scope, receive, send)
            return
        if ctx.test_mode is None:  # a stage was skipped: never guess
            raise GatewayError(500, "internal_error", "Test mode was not decided; nothing was sent.",
                               outcome="not_sent")
        policy, route = ctx.policy, ctx.route
        assert policy is not None
        if key_test_read_may_pass(ctx, scope["method"]):
            await self.app(scope, receive, send)
            return
        if route is None or not route.responses:
            # Named by the route's template, never the path as sent: a path may hold an email or a phone
            # number, and error bodies end up in client logs (security review item 12).
            what = route.path.text if route is not None else "on a path this policy does not declare"
            raise GatewayError(404, "test_mode_unsupported",
                               f"{scope['method']} {what} is not simulated in test mode; nothing was sent.")
        env: dict[str, Any] = {
            "body": ctx.body if ctx.body is not NO_BODY else {},
            "path": ctx.path_params,
            "query": dict(parse_qsl(scope["query_string"].decode("latin-1"))) if scope.get("query_string") else {},
            "request_id": ctx.request_id,
            "now": self.clock.utc_iso(),
            "key": {"id": ctx.key.key_id if ctx.key else None},
        }
        variant = route.response_for(env)
        if variant is None:
            raise GatewayError(404, "test_mode_unsupported",
                               "No simulated response matches this request; nothing was sent.")
        headers: list[tuple[bytes, bytes]] = [(b"x-request-id", ctx.request_id.encode()), *policy.test_headers]
        if variant.headers is not None:
            headers.extend((str(k).lower().encode("latin-1"), str(v).encode("latin-1"))
                           for k, v in variant.headers(env).items())
        body = None
        if variant.body is not None:
            body = orjson.dumps(variant.body(env))
            headers.append((b"content-type", JSON))
        ctx.answered_by = "synthesized"  # counted by the ledger (proxy.ledger), off the request path
        if logs.DEBUG:
            log.debug("short_circuit", route=route.id, status=variant.status)
        await send_json(send, ctx, variant.status, body, headers, self.clock)
