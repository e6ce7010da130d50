"""One verdict: is this request a test, and may it reach a provider?

Every stage and the forwarding code ask here; nothing else decides. ``decide`` reads the policy's
triggers (an issued test key, a test key prefix, a body flag that is ``true``) and raises on anything
that cannot be told apart from a test; ``may_reach_provider`` is the forwarding code's own re-check,
derived again from the request rather than trusted from the stages.

The one test request allowed past the responders is a read (GET/HEAD/OPTIONS) with no body bytes, made
a test by its key alone, the provider's own pass-through test key, on a route with no simulated answer:
reads have no side effects and the provider serves its own sandbox data (:func:`key_test_read_may_pass`).
Header and query names are compared as :mod:`proxy.policy.flagnames` folds them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from proxy.context import NO_BODY, RequestContext
from proxy.errors import GatewayError, bad_request
from proxy.policy.flagnames import query_name_is_misplaced
from proxy.policy.model import BodyTrigger, Policy

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ABSENT: Any = object()


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
    # One C-level set test per request: misplaced_headers holds every lower-case spelling (header names
    # arrive lower-cased), so a header is matched as flagnames.fold would match it.
    if not ctx.headers.keys().isdisjoint(policy.misplaced_headers):
        name = next(name for name in ctx.headers if name in policy.misplaced_headers)
        raise GatewayError(400, "ambiguous_test_mode",
                           f"The '{name}' header does not select test mode here; "
                           f"set the test flag in the JSON body. Nothing was sent.", reason="misplaced_flag")
    if query_string and policy.misplaced_query:
        for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if query_name_is_misplaced(name, policy.misplaced_query):
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


def key_test_read_may_pass(ctx: RequestContext, method: str) -> bool:
    """The only test request allowed past the responders: a read with no body bytes, made a test by the
    provider's own key alone, with no simulation on the route. A read whose body says test (whatever the
    key) never passes: the flag would reach the provider, to be honoured or ignored (issue #10, item 6)."""
    policy, key = ctx.policy, ctx.key
    return (
        method in SAFE_METHODS
        and not ctx.body_bytes
        and policy is not None
        and key is not None
        and key.kind == "passthrough"
        and key_trigger(policy, ctx) is not None
        and (ctx.route is None or not ctx.route.responses)
    )


def may_reach_provider(ctx: RequestContext, method: str, query_string: bytes) -> str | None:
    """``None`` when the request may be forwarded, else why not. Re-derived from the request itself,
    independently of the stages' verdict (a stage skipped or wrong must still not leak a test)."""
    policy = ctx.policy
    if policy is None or ctx.key is None or ctx.test_mode is None:
        return "the request was not fully checked"
    if policy.sandbox is not None and key_trigger(policy, ctx) is not None:
        return "a sandbox key is answered by its workspace"
    if ctx.test_mode or ctx.key.mode == "test":
        if not (ctx.test_mode and key_test_read_may_pass(ctx, method)):
            return "the request is in test mode"
        return None
    is_test, _ = decide(policy, ctx, query_string)
    if is_test:
        return "a test trigger is present"
    return None
