"""Observe: request ids, the one error renderer, overload shedding, one log line, metrics."""

from __future__ import annotations

import re

import httpx
import pytest
import structlog
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from proxy.context import context_of
from proxy.errors import GatewayError
from proxy.metrics import Metrics
from proxy.policy.model import Policy
from proxy.stages.observe import Observe


def client_for(app: Observe) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_errors_render_in_problem_details_without_a_policy() -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        raise GatewayError(418, "bad_request", "nope")

    async with client_for(Observe(inner, metrics=Metrics(CollectorRegistry()))) as client:
        response = await client.get("/x")
    assert response.status_code == 418
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["detail"] == "nope" and doc["request_id"] == response.headers["x-request-id"]
    assert re.match(r"^req_[0-9a-f]{24}$", doc["request_id"])


async def test_a_bug_is_a_json_500_in_the_policy_dialect(sent: Policy) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        context_of(scope).policy = sent
        raise RuntimeError("boom")

    with structlog.testing.capture_logs():
        async with client_for(Observe(inner, metrics=Metrics(CollectorRegistry()))) as client:
            response = await client.post("/v3/messages")
    assert response.status_code == 500
    doc = response.json()
    assert doc["success"] is False
    assert doc["error"]["code"] == "INTERNAL_001"
    assert doc["error"]["outcome"] == "not_sent"
    assert "boom" not in response.text


async def test_overload_is_503_with_retry_after() -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("must not run")

    app = Observe(inner, metrics=Metrics(CollectorRegistry()), max_in_flight=0)
    async with client_for(app) as client:
        response = await client.get("/x")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["outcome"] == "not_sent"
    assert app.in_flight == 0


async def test_one_canonical_log_line_and_metrics(sent: Policy) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = context_of(scope)
        ctx.policy, ctx.test_mode = sent, True
        found = sent.match("POST", "/v3/contacts")
        assert found is not None
        ctx.route = found[0]
        ctx.mark("testmode")
        ctx.status = 201  # senders record the status: observe's contract
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    registry = CollectorRegistry()
    with structlog.testing.capture_logs() as logs:
        async with client_for(Observe(inner, metrics=Metrics(registry))) as client:
            await client.post("/v3/contacts/?phone=+15555550100")
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["policy"], line["route"], line["mode"], line["status"]) == ("sent", "contacts.create", "test", 201)
    assert line["path"] == "/v3/contacts"  # the template, never the raw path
    sample = registry.get_sample_value(
        "testmode_proxy_requests_total",
        {"policy": "sent", "route": "contacts.create", "mode": "test", "status_class": "2xx"},
    )
    assert sample == 1.0
    assert registry.get_sample_value("testmode_proxy_stage_duration_seconds_count", {"stage": "testmode"}) == 1.0


@pytest.mark.parametrize("path", ["/v3/numbers/lookup/+15555550100", "/v3/x/alice@example.com"])
async def test_unmatched_paths_are_logged_masked(path: str) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        raise GatewayError(404, "not_found", "no")

    with structlog.testing.capture_logs() as logs:
        async with client_for(Observe(inner, metrics=Metrics(CollectorRegistry()))) as client:
            await client.get(path)
    logged = next(entry for entry in logs if entry["event"] == "request")["path"]
    assert "5555550100" not in logged and "alice@" not in logged
