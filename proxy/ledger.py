"""Finished requests, accounted in batches: the canonical log line and the request metrics
(requests, their latency, each stage's own time, short-circuits).

*observe* hands each finished request here (:meth:`Ledger.record`: one list append). The pending
ones are accounted together in one tight loop: when ``batch`` of them have gathered, ``interval``
seconds after the first one, before every ``/metrics`` scrape (:attr:`Metrics.before_collect`) and
at shutdown (:meth:`flush`). The work per request is the same as doing it at once; done 128 at a
time its code and data stay in the CPU's caches, which measured ~5 µs (10 %) less per request on
the test-mode path than interleaving it with request handling.

A pending request keeps its context (without the body, dropped at once) until it is accounted, so
memory stays bounded by ``batch``. A batch's log lines leave in one write; each keeps the time its
request finished, not the time it was accounted. A disabled canonical log (level above info) writes
nothing. Without one (unit tests) every request is accounted at once, through structlog.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from proxy.context import NO_BODY, RequestContext
from proxy.logs import CanonicalLog
from proxy.masking import mask_text
from proxy.metrics import Metrics

log = structlog.get_logger("proxy.request")

Pending = tuple[RequestContext, str, str, float]  # context, method, raw path, perf_counter() at the end


def _ms(seconds: float) -> float:
    """Milliseconds to the microsecond (``round(x, 3)`` formats a string inside: 3x the cost)."""
    return int(seconds * 1_000_000) / 1000


class Ledger:
    def __init__(
        self, metrics: Metrics, canonical: CanonicalLog | None = None, *, batch: int = 128, interval: float = 0.1
    ) -> None:
        self.metrics = metrics
        self.canonical = canonical if canonical is not None and canonical.enabled else None
        self.batch = batch if canonical is not None else 1
        self.interval = interval
        self._pending: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        metrics.before_collect = self.flush

    def record(self, ctx: RequestContext, method: str, path: str, end: float) -> None:
        """``ctx``'s request has ended (``end`` is its ``perf_counter()``); account for it soon."""
        ctx.body, ctx.body_bytes = NO_BODY, b""
        pending = self._pending
        pending.append((ctx, method, path, end))
        if len(pending) >= self.batch:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)
            except RuntimeError:  # no running loop: account at once
                self.flush()

    def flush(self) -> None:
        """Account for every pending request now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        epoch = time.time() - time.perf_counter()  # perf_counter() → UNIX time, for the log lines
        lines = bytearray()
        for ctx, method, path, end in pending:
            fields = self._account(ctx, method, path, end)
            if self.canonical is not None:
                lines += self.canonical.line(fields, epoch + end)
            else:
                log.info("request", **fields)
        if self.canonical is not None:
            self.canonical.write(lines)

    def _account(self, ctx: RequestContext, method: str, path: str, end: float) -> dict[str, Any]:
        """Count ``ctx``'s request in the metrics; its canonical log fields."""
        self.metrics.observe_stages(ctx.marks, end)
        policy = ctx.policy.name if ctx.policy else "none"
        route, mode = ctx.route_label, ctx.mode_label
        duration = end - ctx.started
        self.metrics.count_request(policy, route, mode, ctx.status or 500, duration)
        if ctx.answered_by == "synthesized":
            self.metrics.short_circuit(policy, route)
        fields: dict[str, Any] = {
            "request_id": ctx.request_id,
            "method": method,
            "path": ctx.route.path.text if ctx.route else mask_text(path)[:200],
            "policy": policy,
            "route": route,
            "mode": mode,
            "status": ctx.status,
            "duration_ms": _ms(duration),
        }
        if ctx.key is not None:
            fields["key_id"] = ctx.key.key_id
        if ctx.trigger:
            fields["trigger"] = ctx.trigger
        if ctx.reject_reason:
            fields["reason"] = ctx.reject_reason
        if ctx.outcome:
            fields["outcome"] = ctx.outcome
        if ctx.upstream_seconds is not None:
            fields["upstream_ms"] = _ms(ctx.upstream_seconds)
        return fields
