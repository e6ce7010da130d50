"""Validate-only with a live key: the provider's data read back with GETs only, and every way a lookup
can fail said in the provider's terms (nothing was sent either way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.policy.loader import load_policy
from proxy.policy.model import Policy
from proxy.sandbox.lookups import LiveLookups
from tests.stages.seeds import issued, passthrough
from tests.support.servers import POLICIES

CONTACT = {"id": "con_1", "phone": "+27821234567", "email": None, "suppressed": False}
TEMPLATE = {"id": "tpl_1", "status": "approved", "body": "Hi {{1}}."}
SEND = {"test_mode": True, "channel": "whatsapp", "to": {"phone": "+27821234567"}, "template_id": "tpl_1",
        "template_variables": {"1": "Sam"}}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES / "blueticked.yaml")


def provider(contacts: Any = None, template: Any = TEMPLATE, status: int = 200,
             seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if status != 200:
            return httpx.Response(status, json={"ok": False})
        if request.url.path.startswith("/api/v1/templates/"):
            return httpx.Response(404) if template is None else httpx.Response(200, json=template)
        return httpx.Response(200, json={"data": [CONTACT] if contacts is None else contacts})
    return httpx.MockTransport(answer)


async def validate(policy: Policy, transport: httpx.AsyncBaseTransport, body: dict[str, Any] | None = None,
                   key: Any = None) -> tuple[int, Any]:
    ctx = RequestContext("x", "req_x", policy=policy, key=key or passthrough("blu_live_abc"), test_mode=True,
                         body=body or SEND)
    async with httpx.AsyncClient(transport=transport) as client:
        return await LiveLookups(client, 1.0).validate(policy, ctx)


async def test_two_gets_with_the_callers_key_and_a_preview(policy: Policy) -> None:
    seen: list[httpx.Request] = []
    status, doc = await validate(policy, provider(seen=seen))
    assert status == 200 and doc["rendered_body_preview"] == "Hi Sam." and doc["contact_id"] == "con_1"
    assert [(r.method, r.url.path, r.url.query) for r in seen] == [
        ("GET", "/api/v1/contacts", b"phone=%2B27821234567"), ("GET", "/api/v1/templates/tpl_1", b"")]
    assert {r.headers["authorization"] for r in seen} == {"Bearer blu_live_abc"}
    assert all(not r.content for r in seen)


async def test_an_issued_key_reads_with_the_provider_credential(policy: Policy) -> None:
    seen: list[httpx.Request] = []
    await validate(policy, provider(seen=seen), key=issued("live", key="blu_live_gw_x"))
    assert {r.headers["authorization"] for r in seen} == {"Bearer provider"}
    with pytest.raises(GatewayError) as caught:
        await validate(policy, provider(), key=issued("test", key="blu_test_gw_x"))  # no credential at all
    assert (caught.value.status, caught.value.outcome) == (503, "not_sent")


@pytest.mark.parametrize(("transport", "status", "code"), [
    (lambda: provider(contacts=[]), 404, "not_found"),
    (lambda: provider(contacts=[{**CONTACT, "suppressed": True}]), 422, "recipient_suppressed"),
    (lambda: provider(contacts=[{**CONTACT, "phone": None}]), 422, "channel_unavailable"),
    (lambda: provider(template=None), 404, "not_found"),
    (lambda: provider(template={"data": {**TEMPLATE, "status": "rejected"}}), 422, "template_not_approved"),
    (lambda: provider(status=401), 401, "unauthorized"),
    (lambda: provider(status=500), 502, "upstream_unreachable"),
    (lambda: httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused"))), 502,
     "upstream_unreachable"),
])
async def test_each_failure_is_a_clear_answer(policy: Policy, transport: Callable[[], Any], status: int,
                                              code: str) -> None:
    with pytest.raises(GatewayError) as caught:
        await validate(policy, transport())
    assert (caught.value.status, caught.value.code) == (status, code)
    if status >= 500:
        assert caught.value.outcome == "not_sent"


async def test_email_is_looked_up_by_email_and_free_text_needs_no_template(policy: Policy) -> None:
    seen: list[httpx.Request] = []
    contact = {"id": "con_2", "phone": None, "email": "sam@example.com", "suppressed": False}
    _, doc = await validate(policy, provider(contacts=[contact], seen=seen), body={
        "test_mode": True, "channel": "email", "to": {"email": "sam@example.com"}, "subject": "s", "body": "Hello"})
    assert doc["rendered_body_preview"] == "Hello" and doc["to"] == {"email": "sam@example.com"}
    assert [(r.url.path, r.url.query) for r in seen] == [("/api/v1/contacts", b"email=sam%40example.com")]
