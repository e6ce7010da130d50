"""The terminal app: the only code that sends a request to a provider.

It sends through each policy's aiohttp session (:mod:`proxy.upstream`: the origin, the client's
settings, and why aiohttp); nothing outside these two modules knows which client it is.

* Method, path, query, headers and body bytes pass unchanged, except:
  hop-by-hop headers (RFC 9110 §7.6.1, and any named in ``Connection``) are dropped,
  ``X-Forwarded-For``/``-Proto``/``-Host`` are added, and an issued live key is swapped for the
  policy's provider credential (a copy of it in another credential header is dropped).
* The path is the route stage's clean path (:mod:`proxy.target`), mount prefix removed; the raw
  request target is never read here. It is joined onto the policy's origin, and the result's scheme
  and authority (host, port, no userinfo) must still be the policy's before anything is sent: a
  path can never choose the host (security review item 1). Method-override headers are refused by
  the route stage and dropped here too (item 9); so is any method the policy does not use.
* The response streams back as it arrives (bounded memory: aiohttp pauses reading while uvicorn
  applies back-pressure to the client).
* Deadlines: ``upstream_pool_wait`` for a free connection slot (:mod:`proxy.slots`; a full pool is the
  gateway's overload, so 503), ``connect_timeout`` for the TCP connect, ``total_timeout`` for the
  whole exchange (:mod:`proxy.deadline`: no loop timer per request; it fires at most 50 ms late).
* The provider's response head is bounded like a client's request head (Envoy's
  ``max_response_headers_kb`` / count, nginx's ``proxy_buffer_size``): at most ``upstream_max_headers``
  fields (aiohttp's parser counts them) and ``upstream_max_header_bytes`` in all (the parser bounds each
  field and the status line by the same figure, so a hostile head costs at most count x bytes before
  the total is checked). A 100 KiB header, 200 headers or a garbage status line is a 502.
* Never retried once bytes may have left (nginx's rule since 1.9.13); aiohttp's own retry of
  idempotent methods on a reused connection is switched off.

Failures, in the policy's dialect, say whether the provider may have acted:

=====================================  ======  ==========  ============================
what happened                          status  outcome     code
=====================================  ======  ==========  ============================
refused, DNS failure, connect timeout  502     not_sent    ``upstream_unreachable``
no provider credential configured      503     not_sent    ``upstream_unreachable``
no free connection within pool wait    503     not_sent    ``overloaded``
reset or closed after sending          502     unknown     ``upstream_bad_response``
malformed, truncated, head too large   502     unknown     ``upstream_bad_response``
no response within ``total_timeout``   504     unknown     ``upstream_timeout``
=====================================  ======  ==========  ============================

The metric ``testmode_proxy_upstream_failures_total`` tells them apart by ``reason``: ``connect_failed``,
``pool_wait``, ``reset``, ``truncated``, ``malformed``, ``too_many_headers``, ``head_too_large``,
``timeout`` (and ``body_interrupted`` once a streamed response has begun).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import structlog
from starlette.types import Receive, Scope, Send

from proxy import logs
from proxy.context import RequestContext, begin
from proxy.deadline import Deadlines
from proxy.drift import DriftCheck, Kept
from proxy.errors import GatewayError
from proxy.metrics import Metrics
from proxy.policy.model import Policy, PolicySet
from proxy.settings import Limits
from proxy.slots import ConnectionSlots, PoolExhausted
from proxy.upstream import (
    HOP_BY_HOP,
    REQUEST_DROP_ALL,
    WHOLE_BODY_MAX,
    Upstream,
    connection_named,
    open_session,
)
from proxy.verdict import may_reach_provider

log = structlog.get_logger("proxy.forward")

class Forward:
    """ASGI terminal app. ``start()``/``close()`` run in the server's lifespan."""

    def __init__(
        self, *, policies: PolicySet, limits: Limits, metrics: Metrics, drift: DriftCheck | None = None
    ) -> None:
        self.policies = policies
        self.limits = limits
        self.metrics = metrics
        self.upstreams = {policy.name: Upstream.of(policy) for policy in policies.policies}
        self.drift = drift  # samples small answers for the contract drift check (proxy/drift.py)
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.deadlines = Deadlines()  # asyncio.timeout() would arm a loop timer per request
        self.slots = {policy.name: ConnectionSlots(limits.upstream_pool_size, limits.upstream_pool_wait, self.deadlines)
                      for policy in policies.policies}
        for policy in policies.policies:  # a zero per policy, so "stays 0" is visible, not absent
            metrics.forward_refusals.values[(policy.name, "test_mode")] = 0.0

    async def start(self) -> None:
        self.deadlines.start()
        for policy in self.policies.policies:
            self.sessions[policy.name] = open_session(policy, self.limits)

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()
        self.sessions.clear()
        await self.deadlines.stop()

    def _recheck(self, ctx: RequestContext, scope: Scope) -> Policy:
        """Re-derive live-ness independently of the earlier stages' verdict (:mod:`proxy.verdict`)."""
        why = may_reach_provider(ctx, scope["method"], scope.get("query_string", b""))
        if why is not None:
            raise self._refused(ctx.policy.name if ctx.policy else "none",
                                "undecided" if ctx.test_mode is None else "test_mode", why)
        assert ctx.policy is not None
        if scope["method"] not in ctx.policy.methods:  # the route stage answered 405 already
            raise self._refused(ctx.policy.name, "method", "the method is not one the policy allows")
        return ctx.policy

    def _refused(self, policy: str, reason: str, why: str) -> GatewayError:
        """A request an earlier stage should have stopped: counted (it must stay 0), logged, refused."""
        self.metrics.forward_refusal(policy, reason)
        log.error("forward_refused", reason=why)
        return _refuse(why)

    def _headers(self, scope: Scope, ctx: RequestContext, policy: Policy) -> list[tuple[str, str]]:
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        key = ctx.key
        assert key is not None
        key_header = policy.keys.header.encode()
        drop = REQUEST_DROP_ALL
        if key.kind == "issued":
            # Auth let another credential header through only because it carries the same issued key:
            # the issued key must never reach the provider, so that copy is dropped, not forwarded.
            drop = drop | {h.encode() for h in policy.keys.conflicting_headers}
        if "connection" in ctx.headers:  # RFC 9110 §7.6.1: the headers it names are hop-by-hop too
            drop = drop | connection_named(raw)
        out: list[tuple[str, str]] = []
        for name, value in raw:
            lname = name.lower()
            if lname in drop:
                continue
            if lname == key_header and key.kind == "issued":
                if key.forward_credential is None:
                    raise GatewayError(503, "upstream_unreachable",
                                       f"No provider credential is configured for '{policy.name}'; nothing was sent.",
                                       outcome="not_sent", reason="no_credential")
                secret = key.forward_credential.reveal()
                out.append((name.decode("latin-1"),
                            f"Bearer {secret}" if policy.keys.scheme == "bearer" else secret))
                continue
            out.append((name.decode("latin-1"), value.decode("latin-1")))
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        prior = ctx.headers.get("x-forwarded-for")
        out.append(("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip))
        out.append(("X-Forwarded-Proto", ctx.headers.get("x-forwarded-proto") or str(scope.get("scheme", "http"))))
        if host := ctx.headers.get("host"):
            out.append(("X-Forwarded-Host", ctx.headers.get("x-forwarded-host", host)))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "forward")
        policy = self._recheck(ctx, scope)
        session = self.sessions.get(policy.name)
        if session is None:
            raise GatewayError(503, "overloaded", "The gateway is starting or stopping; nothing was sent.",
                               outcome="not_sent", headers={"retry-after": "1"})
        url = self.upstreams[policy.name].url(ctx.path or "/", scope.get("query_string", b""))
        if url is None:  # the route stage's clean path cannot do this: a bug, and never a request elsewhere
            raise self._refused(policy.name, "origin", "the upstream URL would leave the policy's origin")
        headers = self._headers(scope, ctx, policy)
        deadline = policy.total_timeout or self.limits.upstream_total_timeout
        slots = self.slots[policy.name]
        if not slots.take():
            await self._wait_for_slot(slots, policy)
        try:
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            end_at = loop.time() + deadline
            whole: bytes | None = None
            try:
                async with self.deadlines.at(end_at):  # one deadline for the whole exchange
                    response = await session.request(
                        scope["method"], url, data=ctx.body_bytes or None,
                        headers=headers, allow_redirects=False, compress=None,
                    )
                    ctx.upstream_seconds = time.perf_counter() - started
                    length = response.content_length
                    if length is not None and length <= WHOLE_BODY_MAX:
                        # A small body of known length is read whole and sent in one message (no chunk
                        # loop, no closing empty message); a failure here is still a clean 502/504.
                        try:
                            whole = await response.read()
                        finally:
                            response.release()
            except (aiohttp.ClientError, TimeoutError) as exc:  # mapped once, here, with the cause chained
                raise self._failure(policy, exc, deadline) from exc
            if logs.DEBUG:
                log.debug("upstream_answered", status=response.status,
                          upstream_ms=round(ctx.upstream_seconds * 1000, 3))
            self.metrics.observe_upstream(policy.name, ctx.upstream_seconds)
            if whole is not None:
                response_headers = self._response_headers(response, ctx)
                ctx.status = response.status  # the response has begun (observe reads this)
                ctx.answered_by = "provider"
                await send({"type": "http.response.start", "status": response.status, "headers": response_headers})
                await send({"type": "http.response.body", "body": whole})
                if self.drift is not None and self.drift.sample(ctx):  # checked after the client has its answer
                    self.drift.offer(ctx, response.status, whole)
                return
            kept = Kept() if self.drift is not None and self.drift.sample(ctx) else None
            try:
                await self._relay(response, send, end_at, ctx, kept)
            finally:
                response.release()
            if kept is not None and self.drift is not None and (body := kept.body()) is not None:
                self.drift.offer(ctx, response.status, body)
        finally:
            slots.release()

    async def _wait_for_slot(self, slots: ConnectionSlots, policy: Policy) -> None:
        """Every connection to the provider is busy: wait ``upstream_pool_wait``, then 503 (nothing was sent)."""
        try:
            await slots.wait()
        except PoolExhausted:
            self.metrics.upstream_failure(policy.name, "not_sent", "pool_wait")
            log.warning("upstream_pool_exhausted", policy=policy.name, size=slots.size)
            raise GatewayError(503, "overloaded",
                               "The gateway has no free connection to the provider; nothing was sent. Retry later.",
                               outcome="not_sent", reason="pool_wait", headers={"retry-after": "1"}) from None

    def _response_headers(self, response: aiohttp.ClientResponse, ctx: RequestContext) -> list[tuple[bytes, bytes]]:
        raw = response.raw_headers  # at most upstream_max_headers (the parser refuses more)
        drop = HOP_BY_HOP | connection_named(raw) if "Connection" in response.headers else HOP_BY_HOP
        out: list[tuple[bytes, bytes]] = []
        size = 0
        for name, value in raw:
            size += len(name) + len(value)
            lname = name.lower()
            if lname not in drop:
                out.append((lname, value))
        if size > self.limits.upstream_max_header_bytes:
            self.metrics.upstream_failure(ctx.policy.name if ctx.policy else "none", "unknown", "head_too_large")
            log.warning("upstream_failed", error="head_too_large", outcome="unknown", size=size)
            raise GatewayError(502, "upstream_bad_response",
                               "The provider's response headers were too large; the request may have been "
                               "processed. Check before retrying.", outcome="unknown", reason="head_too_large",
                               headers={"x-should-retry": "false"})
        return out

    async def _relay(self, response: aiohttp.ClientResponse, send: Send, end_at: float, ctx: RequestContext,
                     kept: Kept | None = None) -> None:
        """Stream the answer; ``kept`` (a sampled answer, for the drift check) keeps a small body."""
        headers = self._response_headers(response, ctx)
        ctx.status = response.status
        ctx.answered_by = "provider"
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            async with self.deadlines.at(end_at):
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    if kept is not None:
                        kept.add(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Headers are out: the only honest signal left is to abort the connection.
            ctx.outcome = "unknown"
            self.metrics.upstream_failure(ctx.policy.name if ctx.policy else "none", "unknown", "body_interrupted")
            log.warning("upstream_body_interrupted", error=type(exc).__name__)
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _failure(self, policy: Policy, exc: BaseException, deadline: float) -> GatewayError:
        if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
            outcome, status, code, reason = "not_sent", 502, "upstream_unreachable", "connect_failed"
            message = "The provider could not be reached; nothing was sent."
        elif isinstance(exc, TimeoutError):
            outcome, status, code, reason = "unknown", 504, "upstream_timeout", "timeout"
            message = (f"The provider did not answer within {deadline:g}s; the request may have been processed. "
                       "Check before retrying.")
        elif isinstance(exc, aiohttp.ClientError):
            outcome, status, code, reason = "unknown", 502, "upstream_bad_response", _bad_response_reason(exc)
            message = ("The provider closed the connection or answered malformed; the request may have been "
                       "processed. Check before retrying.")
        else:  # pragma: no cover - the caller only passes the two families above
            raise exc
        self.metrics.upstream_failure(policy.name, outcome, reason)
        log.warning("upstream_failed", policy=policy.name, error=type(exc).__name__, outcome=outcome)
        return GatewayError(status, code, message, outcome=outcome, reason=reason,  # type: ignore[arg-type]
                            headers={"x-should-retry": "false"} if outcome == "unknown" else None)


def _bad_response_reason(exc: aiohttp.ClientError) -> str:
    """A bounded metrics label for a response that failed after the request was sent."""
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "truncated"
    if isinstance(exc, aiohttp.ClientResponseError):  # aiohttp's parser refused the response head
        if "Too many headers" in exc.message:
            return "too_many_headers"
        if "Got more than" in exc.message:  # a field or the status line past upstream_max_header_bytes
            return "head_too_large"
        return "malformed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "reset"
    return "bad_response"


def _refuse(why: str) -> GatewayError:
    return GatewayError(500, "internal_error", f"Refusing to forward: {why}. Nothing was sent.",
                        outcome="not_sent", reason="forward_refused")
