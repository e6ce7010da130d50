"""Forward's response-header filter (RFC 9110 §7.6.1), on a stand-in for aiohttp's response; the upstream URL
and the request headers and methods it will not pass on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from proxy.context import SCOPE_KEY, RequestContext
from proxy.errors import GatewayError
from proxy.forward import Forward
from proxy.metrics import Metrics
from proxy.policy.loader import load_policies
from proxy.settings import Settings
from proxy.upstream import Upstream
from tests.stages.seeds import issued

ROOT = Path(__file__).resolve().parents[1]


class _Response:
    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw_headers = tuple(raw)
        self.headers = CIMultiDictProxy(CIMultiDict((k.decode(), v.decode()) for k, v in raw))


def _forward() -> Forward:
    settings = Settings.from_env({})
    return Forward(policies=load_policies(ROOT / "policies"), limits=settings.limits,
                   metrics=Metrics(CollectorRegistry()))


def _filter(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    response: Any = _Response(raw)
    return _forward()._response_headers(response, RequestContext("x", "req_x"))


def test_end_to_end_headers_pass_lower_cased_in_order() -> None:
    assert _filter([(b"Content-Type", b"application/json"), (b"X-Request-Id", b"req_1"), (b"Date", b"d")]) == [
        (b"content-type", b"application/json"), (b"x-request-id", b"req_1"), (b"date", b"d")]


def test_hop_by_hop_headers_and_those_connection_names_are_dropped() -> None:
    raw = [(b"Connection", b"keep-alive, X-Trace"), (b"Keep-Alive", b"timeout=5"), (b"X-Trace", b"t"),
           (b"Transfer-Encoding", b"chunked"), (b"X-Kept", b"k")]
    assert _filter(raw) == [(b"x-kept", b"k")]


def test_without_a_connection_header_only_the_fixed_hop_by_hop_set_goes() -> None:
    assert _filter([(b"Keep-Alive", b"timeout=5"), (b"X-Trace", b"t")]) == [(b"x-trace", b"t")]


# ------------------------------------------------------------------ the upstream URL (security review item 1)

def _upstream(name: str = "sent") -> Upstream:
    policy = load_policies(ROOT / "policies", {"sent": "http://127.0.0.1:9001/base"}).by_name(name)
    assert policy is not None
    return Upstream.of(policy)


def test_the_clean_path_and_query_are_joined_onto_the_policys_base() -> None:
    url = _upstream().url("/v3/contacts/a%40b.example", b"q=%2f@evil&x=1")
    assert str(url) == "http://127.0.0.1:9001/base/v3/contacts/a%40b.example?q=%2f@evil&x=1"
    assert (url.host, url.port, url.user) == ("127.0.0.1", 9001, None)


@pytest.mark.parametrize("path", ["", "v3/me", "//evil/v3/me", "%2f@evil/v3/me", "@evil/v3/me", ":1@evil/x"])
def test_a_path_that_could_reach_the_authority_gets_no_url(path: str) -> None:
    assert _upstream().url(path, b"") is None


def test_a_url_that_left_the_policys_origin_is_never_requested() -> None:
    """The last check before the socket: whatever built the text, scheme and authority must be the policy's."""
    drifted = Upstream("http://127.0.0.1:9001%2f@127.0.0.1:9666", "http", "127.0.0.1:9001")
    assert drifted.url("/v3/me", b"") is None


async def test_forward_refuses_counts_and_sends_nothing_when_the_url_would_leave_the_origin() -> None:
    forward = _forward()
    policy = forward.policies.by_name("sent")
    assert policy is not None
    forward.upstreams["sent"] = Upstream("http://127.0.0.1:9001%2f@127.0.0.1:9666", "http", "127.0.0.1:9001")
    forward.sessions["sent"] = object()  # type: ignore[assignment]  # any use of it would fail the test
    ctx = RequestContext("x", "req_x", policy=policy, key=issued("live"), test_mode=False, path="/v3/me")
    scope = {"type": "http", "method": "GET", "query_string": b"", "headers": [], SCOPE_KEY: ctx}
    with pytest.raises(GatewayError) as caught:
        await forward(scope, _never, _never)
    assert (caught.value.status, caught.value.outcome) == (500, "not_sent")
    assert forward.metrics.forward_refusals.values[("sent", "origin")] == 1


async def _never(*_: Any) -> Any:
    raise AssertionError("nothing may be received or sent")


def test_method_override_headers_are_not_forwarded() -> None:
    policy = _forward().policies.by_name("sent")
    assert policy is not None
    ctx = RequestContext("x", "req_x", policy=policy, key=issued("live"))
    scope = {"headers": [(b"x-api-key", b"sk_live_gw_abc"), (b"X-HTTP-Method-Override", b"DELETE"),
                         (b"x-http-method", b"DELETE"), (b"x-method-override", b"DELETE"), (b"x-kept", b"1")],
             "client": ("127.0.0.1", 1), "scheme": "http"}
    names = [name.lower() for name, _ in _forward()._headers(scope, ctx, policy)]
    assert "x-kept" in names and "x-api-key" in names
    assert not {"x-http-method-override", "x-http-method", "x-method-override"} & set(names)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "OPTIONS", "PROPFIND"])
def test_a_method_the_policy_does_not_use_is_never_forwarded(method: str) -> None:
    forward = _forward()
    policy = forward.policies.by_name("sent")
    assert policy is not None
    ctx = RequestContext("x", "req_x", policy=policy, key=issued("live"), test_mode=False)
    with pytest.raises(GatewayError) as caught:
        forward._recheck(ctx, {"method": method, "query_string": b""})
    assert caught.value.outcome == "not_sent"
    assert forward.metrics.forward_refusals.values[("sent", "method")] == 1
    assert forward._recheck(ctx, {"method": "GET", "query_string": b""}) is policy
