"""Stage 6, *test mode*: decide, once and for all, whether the request is a test.

A request is a test when any trigger says so: the key is an issued test key, the key carries a
test prefix (``sk_test_``), or a body flag is ``true``. A body flag must be a JSON boolean
where present: ``"true"``, ``1`` or ``null`` cannot be told apart from a test request, so they are
400, never a forward. So is a flag whose parent is not an object, a flag required beside its
parent (SendGrid's ``sandbox_mode`` without ``enable``), and a test flag put where the provider
would ignore it (a header or query parameter the policy lists as misplaced).

Reads: ``ctx.policy``, ``ctx.key``, ``ctx.body``, ``ctx.headers``. Writes: ``ctx.test_mode``,
``ctx.trigger``, and ``ctx.request_id`` (``req_test_…`` in test mode). Ends a request with: 400
``invalid_test_flag`` / ``ambiguous_test_mode``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy import logs
from proxy.context import NO_BODY, RequestContext, begin
from proxy.errors import GatewayError, bad_request
from proxy.logs import REQUEST_ID
from proxy.policy.model import BodyTrigger, Policy

_ABSENT: Any = object()
log = structlog.get_logger("proxy.stages")


def flag_value(body: Any, trigger: BodyTrigger) -> Any:
    """The flag's value, ``_ABSENT``, or raise when the body's shape makes the flag ambiguous."""
    node = body
    for depth, part in enumerate(trigger.path):
        if not isinstance(node, dict):
            parent = ".".join(trigger.path[:depth])
            raise bad_request("invalid_test_flag", trigger.message or f"'{parent}' must be an object.",
                              field=trigger.field or parent)
        if part not in node:
            if trigger.require_when_parent_present and depth == len(trigger.path) - 1 and depth > 0:
                raise bad_request("invalid_test_flag", trigger.message or f"'{trigger.name}' is required.",
                                  field=trigger.field or trigger.name)
            return _ABSENT
        node = node[part]
    return node


def decide(policy: Policy, ctx: RequestContext, query_string: bytes) -> tuple[bool, str | None]:
    """(is_test, trigger name); raises :class:`GatewayError` when the request is ambiguous."""
    if not ctx.headers.keys().isdisjoint(policy.misplaced_headers):
        name = next(name for name in policy.misplaced_headers if name in ctx.headers)
        raise GatewayError(400, "ambiguous_test_mode",
                           f"The '{name}' header does not select test mode here; "
                           f"set the test flag in the JSON body. Nothing was sent.", reason="misplaced_flag")
    if query_string and policy.misplaced_query:
        for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name in policy.misplaced_query:
                raise GatewayError(400, "ambiguous_test_mode",
                                   f"The '{name}' query parameter does not select test mode here; "
                                   f"set the test flag in the JSON body. Nothing was sent.", reason="misplaced_flag")
    trigger: str | None = None
    body = ctx.body
    if body is not NO_BODY:
        for body_trigger in policy.body_triggers:
            key = body_trigger.top_level  # the common case, without a call: a top-level flag
            value = body.get(key, _ABSENT) if key is not None and isinstance(body, dict) else flag_value(body,
                                                                                                      body_trigger)
            if value is _ABSENT or value is False:
                continue
            if value is True:
                trigger = trigger or body_trigger.label
                continue
            raise bad_request("invalid_test_flag",
                              body_trigger.message or f"'{body_trigger.name}' must be a boolean (true or false).",
                              field=body_trigger.field or body_trigger.name)
    if trigger is None:
        trigger = key_trigger(policy, ctx)
    return trigger is not None, trigger


def key_trigger(policy: Policy, ctx: RequestContext) -> str | None:
    """The trigger a key alone sets: an issued test key, or a key with a test prefix (``sk_test_``)."""
    key = ctx.key
    if key is None:
        return None
    if key.mode == "test":
        return "key:issued_test"
    if key.presented.startswith(policy.key_prefix_triggers):
        return "key:prefix"
    return None


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
