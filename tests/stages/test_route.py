"""Routing: mount prefixes, path templates, undeclared paths, and the edge refusals before any policy."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from urllib.parse import unquote

import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import Message

from proxy.metrics import Metrics
from proxy.policy.model import Policy, PolicySet
from proxy.stages.observe import Observe
from proxy.stages.route import RouteStage
from tests.stages.harness import Terminal, harness

SENT_KEY = "sk_live_" + "s" * 24
SENDGRID_KEY = "SG." + "a" * 22 + "." + "b" * 43
SENT_HEADER = (b"x-api-key", SENT_KEY.encode())


@pytest.mark.parametrize(
    ("method", "path", "route", "inner", "prefix", "params"),
    [
        ("POST", "/v3/messages", "messages.send", "/v3/messages", "", {}),
        ("POST", "/sent/v3/messages", "messages.send", "/v3/messages", "/sent", {}),
        ("POST", "/v3/messages/", "messages.send", "/v3/messages/", "", {}),
        ("PATCH", "/v3/contacts/c-1", "contacts.update", "/v3/contacts/c-1", "", {"id": "c-1"}),
        ("PUT", "/sent/v3/profiles/p/campaigns/c", "profiles.campaigns.update", "/v3/profiles/p/campaigns/c",
         "/sent", {"profile_id": "p", "campaign_id": "c"}),
        ("GET", "/v3/analytics/c-1", None, "/v3/analytics/c-1", "", {}),
        ("GET", "/sent/v3/numbers/+1555", None, "/v3/numbers/+1555", "/sent", {}),
    ],
)
async def test_matching(
    policy_set: PolicySet, method: str, path: str, route: str | None, inner: str, prefix: str,
    params: dict[str, str],
) -> None:
    client, _ = harness(partial(RouteStage, policies=policy_set))
    async with client:
        response = await client.request(method, path, headers={"x-api-key": SENT_KEY})
    snapshot = response.json()
    assert (snapshot["policy"], snapshot["route"]) == ("sent", route)
    assert snapshot["mount_prefix"] == prefix
    assert snapshot["path_params"] == params


async def test_at_a_shared_prefix_the_key_shape_decides_and_no_claim_is_a_problem(policy_set: PolicySet) -> None:
    client, terminal = harness(partial(RouteStage, policies=policy_set))
    async with client:
        by_sent = await client.get("/v9/anything", headers={"x-api-key": SENT_KEY})
        by_sendgrid = await client.get("/v9/anything", headers={"authorization": f"Bearer {SENDGRID_KEY}"})
        sent_key_as_bearer = await client.get("/v3/analytics/abc", headers={"authorization": f"Bearer {SENT_KEY}"})
        neither = await client.get("/v9/anything")
    assert (by_sent.json()["policy"], by_sent.json()["path"]) == ("sent", "/v9/anything")
    assert by_sendgrid.json()["policy"] == "sendgrid"
    assert (sent_key_as_bearer.status_code, sent_key_as_bearer.json()["code"]) == (401, "unauthorized")
    assert (neither.status_code, neither.json()["code"]) == (404, "not_found")
    for refused in (sent_key_as_bearer, neither):
        assert refused.headers["content-type"] == "application/problem+json"
    assert terminal.calls == 2


@pytest.mark.parametrize("path", ["/v3/../v3/messages", "/sent/./v3/messages", "/v3/messages/.."])
async def test_dot_segments_are_refused(policy_set: PolicySet, path: str) -> None:
    # httpx normalises dot segments before sending; a raw client on the wire does not, so the
    # stage is called with the scope uvicorn would build.
    terminal = Terminal()
    app = Observe(RouteStage(terminal, policies=policy_set), metrics=Metrics(CollectorRegistry()))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [SENT_HEADER], "client": ("127.0.0.1", 1), "scheme": "http"}
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert terminal.calls == 0


async def test_header_limits_are_431_json(policy_set: PolicySet) -> None:
    client, terminal = harness(partial(RouteStage, policies=policy_set, max_header_bytes=1000, max_headers=10))
    async with client:
        too_big = await client.post("/v3/messages", headers={"x-big": "a" * 1001})
        too_many = await client.post("/v3/messages", headers={f"x-h{i}": "1" for i in range(11)})
    assert too_big.status_code == too_many.status_code == 431
    assert too_big.json()["status"] == 431
    assert terminal.calls == 0


async def test_no_policy_for_a_prefix_is_404_problem(sent: Policy) -> None:
    only_prefixed = replace(sent, prefixes=("/sent",))
    client, _ = harness(partial(RouteStage, policies=PolicySet((only_prefixed,), (("/sent", only_prefixed),))))
    async with client:
        response = await client.get("/v3/me")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def _raw(policy_set: PolicySet, method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[
        list[Message], Terminal]:
    """The stage called with the scope uvicorn builds (raw_path as sent; path decoded), as httpx would not send it."""
    terminal = Terminal()
    app = Observe(RouteStage(terminal, policies=policy_set), metrics=Metrics(CollectorRegistry()))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    text = raw_path.decode("latin-1")
    scope = {"type": "http", "method": method, "path": unquote(text), "raw_path": raw_path, "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 1), "scheme": "http"}
    await app(scope, receive, send)
    return sent, terminal


@pytest.mark.parametrize(("raw_path", "headers", "content_type"), [
    (b"/sent%2f@127.0.0.1:9666/v3/me", [], b"application/json"),  # under /sent: Sent's dialect
    (b"//127.0.0.1:9666/v3/me", [SENT_HEADER], b"application/json"),  # Sent's key header: Sent's
    (b"//127.0.0.1:9666/v3/me", [], b"application/problem+json"),  # neither: problem details (RFC 9457)
])
async def test_a_refused_target_is_worded_in_the_dialect_of_the_policy_it_names(
    policy_set: PolicySet, raw_path: bytes, headers: list[tuple[bytes, bytes]], content_type: bytes
) -> None:
    sent, terminal = await _raw(policy_set, "GET", raw_path, headers)
    assert sent[0]["status"] == 400
    assert (b"content-type", content_type) in sent[0]["headers"]
    assert terminal.calls == 0


async def test_escaped_unreserved_characters_route_like_the_plain_path(policy_set: PolicySet) -> None:
    sent, terminal = await _raw(policy_set, "PATCH", b"/se%6et/v3/%63ontacts/a%40b.example", [SENT_HEADER])
    snapshot = orjson.loads(sent[1]["body"])
    assert (snapshot["route"], snapshot["mount_prefix"], snapshot["path"]) == (
        "contacts.update", "/sent", "/v3/contacts/a%40b.example")  # the path forward joins onto the origin
    assert snapshot["path_params"] == {"id": "a@b.example"}  # templates get the value the client meant
    assert terminal.calls == 1


async def test_a_method_the_policy_does_not_use_is_405_with_allow(policy_set: PolicySet) -> None:
    sent, terminal = await _raw(policy_set, "TRACE", b"/v3/me", [SENT_HEADER])
    assert sent[0]["status"] == 405
    assert (b"allow", b"DELETE, GET, HEAD, PATCH, POST, PUT") in sent[0]["headers"]
    assert terminal.calls == 0


@pytest.mark.parametrize("path", [b"/v3/me", b"/v3/contacts"])  # a declared route and an undeclared path
async def test_a_method_override_header_is_400(policy_set: PolicySet, path: bytes) -> None:
    sent, terminal = await _raw(policy_set, "GET", path, [SENT_HEADER, (b"x-http-method-override", b"PUT")])
    assert sent[0]["status"] == 400
    assert terminal.calls == 0
