"""Stage 6, *test mode*: decide, once and for all, whether the request is a test.

A request is a test when any trigger says so: the key is an issued test key, the key carries a
test prefix (``sk_test_``), or a body flag is ``true``. A body flag must be a JSON boolean
where present: ``"true"``, ``1`` or ``null`` cannot be told apart from a test request, so they are
400, never a forward. So is a flag whose parent is not an object, a flag required beside its
parent (SendGrid's ``sandbox_mode`` without ``enable``), and a test flag put where the provider
would ignore it: a header or query parameter named like a trigger's key, in any case, ``-`` or ``_``,
``[]`` or nested (:mod:`proxy.policy.flagnames`). Near-miss and repeated body keys are refused earlier,
by *body* (:mod:`proxy.flagkeys`).

Reads: ``ctx.policy``, ``ctx.key``, ``ctx.body``, ``ctx.headers``. Writes: ``ctx.test_mode``,
``ctx.trigger``, and ``ctx.request_id`` (``req_test_…`` in test mode). Ends a request with: 400
``invalid_test_flag`` / ``ambiguous_test_mode``.
"""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy import logs
from proxy.context import RequestContext, begin
from proxy.logs import REQUEST_ID
from proxy.policy.model import Policy
from proxy.verdict import decide, key_trigger

log = structlog.get_logger("proxy.stages")


def decide_by_key(ctx: RequestContext) -> None:
    """For a request refused before (or while) its mode was decided: with a test key it is a test
    request all the same, and its error says so (``req_test_`` id, the policy's test headers), like
    every other answer to that key. Called by *observe* before it renders an error."""
    if ctx.test_mode is None and ctx.policy is not None and (trigger := key_trigger(ctx.policy, ctx)) is not None:
        ctx.trigger = trigger
        _decided(ctx.policy, ctx, True)


def _decided(policy: Policy, ctx: RequestContext, is_test: bool) -> None:
    ctx.test_mode = is_test
    prefix = policy.test_request_id_prefix if is_test else policy.live_request_id_prefix
    request_id = prefix + ctx.request_id_suffix
    if request_id != ctx.request_id:
        ctx.request_id = request_id
        REQUEST_ID.set(request_id)  # observe resets it when the request ends


class TestMode:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "testmode")
        policy = ctx.policy
        assert policy is not None
        # Refused here, the request is still decided by its key alone: observe calls decide_by_key().
        is_test, ctx.trigger = decide(policy, ctx, scope.get("query_string", b""))
        _decided(policy, ctx, is_test)
        if logs.DEBUG:
            log.debug("mode_decided", mode=ctx.mode_label, trigger=ctx.trigger)
        await self.app(scope, receive, send)
