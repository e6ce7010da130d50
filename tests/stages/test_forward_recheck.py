"""The forwarding app re-derives live-ness itself: a request that slipped past the stages still stops."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.forward import Forward
from proxy.metrics import Metrics
from proxy.policy.model import Policy, PolicySet
from proxy.settings import Limits
from tests.stages.seeds import issued, passthrough


def context(sent: Policy, *, test_mode: bool | None, key: Any, body: Any = None) -> RequestContext:
    ctx = RequestContext("x", "req_x", policy=sent, key=key, test_mode=test_mode, body=body or {})
    ctx.path = "/v3/contacts"
    return ctx


@pytest.mark.parametrize(
    ("test_mode", "key", "body", "method"),
    [
        (True, issued("live"), {}, "POST"),
        (None, issued("live"), {}, "POST"),
        (False, issued("test"), {}, "POST"),
        (False, issued("live"), {"test_mode": True}, "POST"),  # stages said live, the body says test
        (False, issued("live"), {"sandbox": True}, "POST"),
        (False, passthrough("sk_test_abc"), {}, "POST"),
        (True, issued("test"), {}, "GET"),
    ],
)
def test_refuses_anything_not_live(
    policy_set: PolicySet, sent: Policy, test_mode: bool | None, key: Any, body: Any, method: str
) -> None:
    forward = Forward(policies=policy_set, limits=Limits(), metrics=Metrics(CollectorRegistry()))
    scope = {"method": method, "query_string": b""}
    assert forward.metrics.forward_refusals.values[("sent", "test_mode")] == 0  # visible as 0, not absent
    with pytest.raises(GatewayError) as caught:
        forward._recheck(context(sent, test_mode=test_mode, key=key, body=body), scope)
    assert caught.value.outcome == "not_sent"
    reason = "undecided" if test_mode is None else "test_mode"
    assert forward.metrics.forward_refusals.values[("sent", reason)] == 1  # the never-forward rule, observable


@pytest.mark.parametrize(
    ("test_mode", "key", "method"),
    [(False, issued("live"), "POST"), (True, passthrough("sk_test_abc"), "GET")],
)
def test_lets_live_and_provider_key_reads_through(
    policy_set: PolicySet, sent: Policy, test_mode: bool, key: Any, method: str
) -> None:
    forward = Forward(policies=policy_set, limits=Limits(), metrics=Metrics(CollectorRegistry()))
    ctx = context(sent, test_mode=test_mode, key=key)
    assert forward._recheck(ctx, {"method": method, "query_string": b""}) is sent
