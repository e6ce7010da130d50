"""Stage 1, *observe*: request id, overload shedding, the one ``except`` that turns a raised
:class:`GatewayError` into a response (:mod:`proxy.render`), and, once the request has ended,
its canonical log line and metrics (handed to the :class:`proxy.ledger.Ledger`, which accounts
finished requests in batches).

Reads: ``ctx.status`` (set by whoever starts the response: :func:`proxy.render.send_json` or
:mod:`proxy.forward`), which tells it whether an error can still be answered. Writes: creates the
:class:`RequestContext` under ``scope[SCOPE_KEY]``; for a refused request made with a test key, the
test-mode decision (:func:`proxy.stages.testmode.decide_by_key`).
Ends a request with: whatever an inner stage raised (its status, in the route's dialect);
503 ``overloaded`` (+ ``Retry-After``) past ``max_in_flight``; 500 ``internal_error`` on a bug.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.context import SCOPE_KEY, RequestContext
from proxy.errors import GatewayError
from proxy.ledger import Ledger
from proxy.logs import REQUEST_ID
from proxy.metrics import Metrics
from proxy.render import send_error
from proxy.stages.testmode import decide_by_key

log = structlog.get_logger("proxy.request")


def _request_id_suffixes(batch: int = 256) -> Iterator[str]:
    """96 random bits per request id, read from the OS ``batch`` ids at a time (one syscall, not one each)."""
    while True:
        digits = os.urandom(12 * batch).hex()
        yield from [digits[i:i + 24] for i in range(0, 24 * batch, 24)]


class Observe:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        ledger: Ledger | None = None,
        max_in_flight: int = 1024,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.app = app
        self.clock = clock
        self.metrics = metrics
        self.ledger = ledger or Ledger(metrics)
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.suffixes = _request_id_suffixes()
        metrics.in_flight = lambda: self.in_flight  # read at scrape time, not written per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        suffix = next(self.suffixes)
        ctx = RequestContext(suffix, "req_" + suffix)
        scope[SCOPE_KEY] = ctx
        bound = REQUEST_ID.set(ctx.request_id)
        ctx.mark("observe")
        self.in_flight += 1
        try:
            if self.in_flight > self.max_in_flight:
                raise GatewayError(503, "overloaded", "The gateway is at capacity; nothing was sent. Retry later.",
                                   outcome="not_sent", headers={"retry-after": "1"})
            await self.app(scope, receive, send)
        except GatewayError as error:
            if ctx.status:  # the response has started: too late for another one
                raise
            await self._reject(ctx, error, send)
        except Exception as exc:
            if ctx.status:
                ctx.outcome = ctx.outcome or "unknown"
                log.error("response_aborted", error=type(exc).__name__)
                raise
            log.exception("internal_error")
            await self._reject(ctx, GatewayError(500, "internal_error", "Internal gateway error; nothing was sent.",
                                                 outcome="not_sent"), send)
        finally:
            self.in_flight -= 1
            self.ledger.record(ctx, scope["method"], scope["path"], time.perf_counter())
            REQUEST_ID.reset(bound)

    async def _reject(self, ctx: RequestContext, error: GatewayError, send: Send) -> None:
        decide_by_key(ctx)  # a test key's request is answered as a test, even when refused early
        await send_error(send, ctx, error, self.metrics, self.clock)
