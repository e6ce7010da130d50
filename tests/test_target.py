"""Request targets and methods (proxy/target.py), and the property behind security review item 1: whatever
the request target, the only origin the gateway sends to is the policy's.

The property drives the real code path: each generated target is parsed by httptools as uvicorn parses it
(its request parser, then ``parse_url``), the scope uvicorn would build goes through *observe*, *route*
and the forwarding app, whose aiohttp session is replaced by one that records the URL it was asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from proxy.context import context_of
from proxy.errors import GatewayError
from proxy.forward import Forward
from proxy.keys.identity import KeyIdentity
from proxy.metrics import Metrics
from proxy.policy.loader import load_policies
from proxy.policy.model import Policy, PolicySet
from proxy.settings import Limits, Secret
from proxy.stages.observe import Observe
from proxy.stages.route import RouteStage
from proxy.target import bad_target, clean_path, decoded_params, refuse_method_override, require_method
from tests.support.servers import POLICIES
from tests.support.targets import targets

ATTACKER = "127.0.0.1:9666"


def scope_for(raw_path: bytes) -> Scope:
    path = raw_path.decode("latin-1")
    return {"raw_path": raw_path, "path": unquote(path) if "%" in path else path}


@pytest.mark.parametrize(("raw", "clean"), [
    (b"/", "/"),
    (b"/v3/messages", "/v3/messages"),
    (b"/v3/messages/", "/v3/messages/"),
    (b"/sent/v3/contacts/c-1", "/sent/v3/contacts/c-1"),
    (b"/se%6et/v3/%63ontacts/%7Ex", "/sent/v3/contacts/~x"),   # escaped unreserved: decoded (RFC 3986 §6.2.2.2)
    (b"/v3/contacts/a%40b.example", "/v3/contacts/a%40b.example"),  # other escapes: as received
    (b"/v3/contacts/a@b.example", "/v3/contacts/a@b.example"),  # '@' and ':' are path characters
    (b"/v3/a:b;c=d,e+f!$&'()*", "/v3/a:b;c=d,e+f!$&'()*"),
    (b"/v3/%e2%82%ac%20%25%3a%3F%23", "/v3/%e2%82%ac%20%25%3a%3F%23"),
    (b"/v3/a.b/..c/.d/c..", "/v3/a.b/..c/.d/c.."),  # dots inside a segment are not dot segments
    (b"/v3/%2e%2ex", "/v3/..x"),
])
def test_clean_paths(raw: bytes, clean: str) -> None:
    assert clean_path(scope_for(raw)) == clean


@pytest.mark.parametrize("raw", [
    b"*", b"", b"v3/me", b"//", b"//evil/v3/me", b"/v3//me", b"/sent%2f@evil/v3/me", b"/sent%2F@evil",
    b"/v3/%5c", b"/v3/%5Cevil", b"/v3\\evil", b"/v3/%00", b"/v3/%0a", b"/v3/%7f", b"/v3/%1F",
    b"/v3/.", b"/v3/..", b"/v3/../me", b"/./v3", b"/v3/%2e", b"/v3/%2E%2e/me", b"/v3/.%2e", b"/v3/..;/me", b"/v3/.;x",
    b"/v3/%", b"/v3/%z", b"/v3/%zz", b"/v3/%2", b"/v3/a b", b"/v3/\xc3\xa9", b"/v3/<x>", b"/v3/a\"b", b"/v3/{id}",
    b"/v3/a|b", b"/v3/a^b", b"/v3/a`b", b"/v3/[::1]", b"/v3/#x", b"/v3/?x", b"http://evil/v3/me",
])
def test_targets_that_are_not_clean_paths_are_400(raw: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        clean_path(scope_for(raw))
    assert (caught.value.status, caught.value.code, caught.value.reason) == (400, "bad_request", "bad_target")
    assert caught.value.message == bad_target().message  # one wording: nothing of the target is echoed


def test_without_raw_path_the_decoded_path_is_re_encoded() -> None:
    assert clean_path({"path": "/v3/contacts/a b@c"}) == "/v3/contacts/a%20b@c"
    with pytest.raises(GatewayError):
        clean_path({"path": "/v3/../me"})


def test_path_parameters_are_decoded_for_templates() -> None:
    assert decoded_params({"id": "a%40b.example%20x"}) == {"id": "a@b.example x"}
    plain = {"id": "c-1"}
    assert decoded_params(plain) is plain


@pytest.mark.parametrize("name", ["x-http-method-override", "x-http-method", "x-method-override"])
def test_method_override_headers_are_refused(name: str) -> None:
    with pytest.raises(GatewayError) as caught:
        refuse_method_override({"x-api-key": "k", name: "DELETE"})
    assert (caught.value.status, caught.value.reason) == (400, "method_override")
    assert name in caught.value.message
    refuse_method_override({"x-api-key": "k", "x-http-method-overrides": "DELETE"})  # only those names


@pytest.fixture(scope="module")
def policy_set() -> PolicySet:
    return load_policies(POLICIES, {"sent": "http://127.0.0.1:9001", "sendgrid": "https://api.sendgrid.com"})


def policy(policy_set: PolicySet, name: str) -> Policy:
    found = policy_set.by_name(name)
    assert found is not None
    return found


@pytest.mark.parametrize(("name", "allowed"), [
    ("sent", {"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"}),
    ("sendgrid", {"GET", "HEAD", "POST"}),  # POST /v3/mail/send, GET /v3/scopes (the key check), and HEAD
])
def test_methods_are_those_the_policy_uses(policy_set: PolicySet, name: str, allowed: set[str]) -> None:
    compiled = policy(policy_set, name)
    assert compiled.methods == allowed
    for method in allowed:
        require_method(compiled, method)
    for method in ("TRACE", "CONNECT", "OPTIONS", "PROPFIND", "get", *({"PUT", "PATCH", "DELETE"} - allowed)):
        with pytest.raises(GatewayError) as caught:
            require_method(compiled, method)
        assert caught.value.status == 405
        assert caught.value.headers == {"allow": ", ".join(sorted(allowed))}


# ------------------------------------------------------------------------------------------ the property

def uvicorn_scope(method: bytes, target: bytes, headers: dict[str, str]) -> Scope | None:
    """The scope uvicorn's httptools protocol builds for this request line, or None if it answers 400 itself."""
    class Line:
        url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

    line = Line()
    parser = httptools.HttpRequestParser(line)
    try:
        parser.feed_data(method + b" " + target + b" HTTP/1.1\r\nhost: gw\r\n\r\n")
        parsed = httptools.parse_url(line.url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")
    except (httptools.HttpParserError, httptools.HttpParserInvalidURLError, UnicodeDecodeError, AttributeError):
        return None
    return {
        "type": "http", "http_version": "1.1", "scheme": "http", "method": method.decode(),
        "path": unquote(path) if "%" in path else path, "raw_path": raw_path, "query_string": parsed.query or b"",
        "headers": [(b"host", b"gw"), *((k.encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080),
    }


class LiveKey:
    """Stands in for auth, body and testmode: a live issued key with a credential to swap in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = context_of(scope)
        ctx.key = KeyIdentity("key_p", "issued", "live", frozenset({"*"}), Secret("provider-credential"), "k")
        ctx.test_mode = False
        await self.app(scope, receive, send)


class RecordingSession:
    """An aiohttp session that records the URL each request is for and never opens a connection."""

    def __init__(self) -> None:
        self.urls: list[URL] = []

    async def request(self, method: str, url: URL, **_: Any) -> Any:
        self.urls.append(url)
        raise aiohttp.ClientConnectionError("recorded, not sent")


@pytest.fixture
def forward(policy_set: PolicySet) -> Iterator[tuple[Forward, dict[str, RecordingSession]]]:
    fwd = Forward(policies=policy_set, limits=Limits(), metrics=Metrics(CollectorRegistry()))
    sessions = {p.name: RecordingSession() for p in policy_set.policies}
    fwd.sessions = sessions  # type: ignore[assignment]
    yield fwd, sessions


def origin_of(base_url: str) -> tuple[str, str, int, None, None]:
    """Where a request to ``base_url`` connects, worked out by urllib (independently of yarl and the gateway)."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), None, None


# Keys of each policy's shape (policies/*.yaml keys.shapes): a key of no policy's shape is not routed at all.
KEY_HEADERS = st.sampled_from([{"x-api-key": "sk_live_" + "k" * 24},
                               {"authorization": "Bearer SG." + "k" * 22 + "." + "k" * 43}])


def test_every_target_reaches_only_the_policys_origin(
    policy_set: PolicySet, forward: tuple[Forward, dict[str, RecordingSession]]
) -> None:
    fwd, sessions = forward
    app = Observe(RouteStage(LiveKey(fwd), policies=policy_set), metrics=Metrics(CollectorRegistry()))
    outcomes: dict[str, int] = {"unparsed": 0, "refused": 0, "sent": 0}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def drive(scope: Scope) -> int:
        status = 0

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    with asyncio.Runner() as runner:
        runner.run(_started(fwd))

        @settings(max_examples=5000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(target=targets(ATTACKER), method=st.sampled_from([b"GET", b"POST", b"DELETE"]), headers=KEY_HEADERS)
        def check(target: bytes, method: bytes, headers: dict[str, str]) -> None:
            scope = uvicorn_scope(method, target, headers)
            if scope is None:
                outcomes["unparsed"] += 1
                return
            before = sum(len(s.urls) for s in sessions.values())
            status = runner.run(drive(scope))
            assert status < 500 or status == 502, (target, status)  # 502: the recording session's "failure"
            if sum(len(s.urls) for s in sessions.values()) == before:
                outcomes["refused"] += 1
                assert 400 <= status < 500, (target, status)
                return
            outcomes["sent"] += 1
            assert status == 502
            for name, session in sessions.items():
                want = origin_of(policy(policy_set, name).base_url)
                for url in session.urls:
                    assert (url.scheme, url.raw_host, url.port, url.raw_user, url.raw_password) == want, (target, url)
                    assert url.raw_path.startswith("/") and not url.raw_path.startswith("//"), (target, url)
                session.urls.clear()

        check()
        runner.run(fwd.deadlines.stop())
    # Not vacuous: the generated targets are forwarded, refused by the gateway and refused by the parser.
    assert min(outcomes.values()) > 200, outcomes


async def _started(fwd: Forward) -> None:
    fwd.deadlines.start()
