"""The one verdict (proxy/verdict.py): which requests may reach a provider, as a table."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.context import NO_BODY, RequestContext
from proxy.policy.loader import load_policies
from proxy.policy.model import Policy
from proxy.verdict import may_reach_provider
from tests.stages.seeds import issued, passthrough
from tests.support.servers import POLICIES


@pytest.fixture(scope="module")
def sent() -> Policy:
    policy = load_policies(POLICIES).by_name("sent")
    assert policy is not None
    return policy


def ctx_for(
    sent: Policy, test_mode: bool | None, key: Any, body: Any = NO_BODY, routed: bool = False
) -> RequestContext:
    raw = b"" if body is NO_BODY else orjson.dumps(body)
    ctx = RequestContext("x", "req_x", policy=sent, key=key, test_mode=test_mode, body=body, body_bytes=raw)
    if routed:
        ctx.route = sent.route_list[0]  # messages.send: has a simulated answer
    return ctx


CASES = [
    # (test_mode, key, body, method, routed, allowed)
    (False, issued("live"), {}, "POST", False, True),
    (False, passthrough("sk_live_abc"), {}, "POST", False, True),
    (None, issued("live"), {}, "POST", False, False),  # undecided: never guess
    (True, issued("live"), {"test_mode": True}, "POST", False, False),
    (False, issued("test"), {}, "POST", False, False),  # stages said live, the key says test
    (False, issued("live"), {"test_mode": True}, "POST", False, False),  # stages said live, the body says test
    (False, issued("live"), {"sandbox": True}, "POST", False, False),
    (False, passthrough("sk_test_abc"), {}, "POST", False, False),
    (True, passthrough("sk_test_abc"), NO_BODY, "GET", False, True),  # the provider's own sandbox read
    (True, passthrough("sk_test_abc"), NO_BODY, "GET", True, False),  # ...unless the route is simulated
    (True, passthrough("sk_test_abc"), {}, "POST", False, False),
    (True, issued("test"), NO_BODY, "GET", False, False),  # an issued test key never passes
    # Only a read made a test by the key alone, with no body, passes (issue #10, item 6).
    (True, passthrough("sk_live_abc"), {"test_mode": True}, "GET", False, False),
    (True, passthrough("sk_live_abc"), {"sandbox": True}, "HEAD", False, False),
    (True, passthrough("sk_live_abc"), {"test_mode": True}, "OPTIONS", False, False),
    (True, passthrough("sk_live_abc"), NO_BODY, "GET", False, False),  # test, yet not by its key: never guess
    (True, passthrough("sk_test_abc"), {"test_mode": True}, "GET", False, False),
    (True, passthrough("sk_test_abc"), {}, "GET", False, False),  # a body, even an empty object
    (True, passthrough("sk_test_abc"), NO_BODY, "OPTIONS", False, True),
]


@pytest.mark.parametrize(("test_mode", "key", "body", "method", "routed", "allowed"), CASES)
def test_may_reach_provider(
    sent: Policy, test_mode: bool | None, key: Any, body: Any, method: str, routed: bool, allowed: bool
) -> None:
    why = may_reach_provider(ctx_for(sent, test_mode, key, body, routed), method, b"")
    assert (why is None) is allowed, why


@pytest.mark.parametrize(("test_mode", "key", "method", "allowed"), [
    (False, issued("live", key="blu_live_gw_x"), "POST", True),
    (False, passthrough("blu_live_x"), "GET", True),
    (True, passthrough("blu_test_x"), "GET", False),  # unlike Sent's sk_test_ reads: the sandbox answers them
    (False, passthrough("blu_test_x"), "GET", False),  # the stages said live; the key says sandbox
    (True, issued("test", key="blu_test_gw_x"), "GET", False),
    (False, issued("test", key="blu_test_gw_x"), "POST", False),
])
def test_a_sandbox_key_never_reaches_the_provider(test_mode: bool, key: Any, method: str, allowed: bool) -> None:
    blueticked = load_policies(POLICIES).by_name("blueticked")
    assert blueticked is not None and blueticked.sandbox is not None
    ctx = RequestContext("x", "req_x", policy=blueticked, key=key, test_mode=test_mode, body=NO_BODY)
    why = may_reach_provider(ctx, method, b"")
    assert (why is None) is allowed, why
