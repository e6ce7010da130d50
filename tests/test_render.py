"""Errors rendered in one place: in the provider's dialect on its routes, RFC 9457 problem details elsewhere."""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.types import Message

from proxy.context import RequestContext
from proxy.errors import FieldError, GatewayError, bad_request
from proxy.policy.loader import load_policies
from proxy.policy.model import Policy
from proxy.render import error_response, problem_details, send_json

ROOT = Path(__file__).resolve().parents[1]
REQUEST_ID = "req_test_0123456789abcdef"


@cache
def sent() -> Policy:
    policy = load_policies(ROOT / "policies").by_name("sent")
    assert policy is not None
    return policy


def context(policy: Policy | None, test_mode: bool | None = None) -> RequestContext:
    return RequestContext(request_id_suffix="0123456789abcdef", request_id=REQUEST_ID, policy=policy,
                          test_mode=test_mode)


def render(error: GatewayError, ctx: RequestContext) -> tuple[dict[str, Any], dict[str, list[str]]]:
    body, headers = error_response(error, ctx)
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        assert name == name.lower()
        by_name.setdefault(name.decode(), []).append(value.decode())
    doc = orjson.loads(body)
    assert isinstance(doc, dict)
    return doc, by_name


VALIDATION = GatewayError(
    400, "validation_error", "The request body is invalid.",
    items=[FieldError("to[0]", "to[0] must be a valid phone number"), FieldError("to[0]", "to[0] is a duplicate"),
           FieldError("text", "text must not be empty", "https://docs/text"), FieldError(None, "body is odd")],
)


@pytest.mark.parametrize(
    ("error", "code", "message", "details", "outcome"),
    [
        (VALIDATION, "VALIDATION_001", "The request body is invalid.",
         {"to[0]": ["to[0] must be a valid phone number", "to[0] is a duplicate"],
          "text": ["text must not be empty"], "body": ["body is odd"]}, None),
        (bad_request("invalid_test_flag", "test_mode must be a boolean", field="test_mode"), "VALIDATION_005",
         "test_mode must be a boolean", {"test_mode": ["test_mode must be a boolean"]}, None),
        (GatewayError(401, "unauthorized", "Invalid API key."), "AUTH_001", "Invalid API key.", None, None),
        (GatewayError(503, "key_verification_unavailable", "Retry later.", outcome="not_sent"), "GATEWAY_005",
         "Retry later.", None, "not_sent"),
        (GatewayError(504, "upstream_timeout", "No answer.", outcome="unknown"), "GATEWAY_002", "No answer.", None,
         "unknown"),
        # a code the dialect does not translate passes through as is
        (GatewayError(431, "headers_too_large", "Too many headers."), "headers_too_large", "Too many headers.", None,
         None),
    ],
)
def test_errors_on_a_provider_route_use_the_provider_envelope(
    error: GatewayError, code: str, message: str, details: dict[str, list[str]] | None, outcome: str | None
) -> None:
    doc, headers = render(error, context(sent()))
    assert doc == {
        "success": False,
        "data": None,
        "error": {"code": code, "message": message, "details": details,
                  "doc_url": "https://docs.sent.dm/reference/errors", "outcome": outcome},
        "meta": {"request_id": REQUEST_ID, "timestamp": doc["meta"]["timestamp"], "version": "v3"},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["meta"]["timestamp"])
    assert headers["x-request-id"] == [REQUEST_ID]
    assert headers["content-type"] == ["application/json"]


@pytest.mark.parametrize(
    ("status", "should_retry"),
    [(400, None), (401, None), (409, ["false"]), (429, None), (500, ["false"]), (503, None)],
)
def test_dialect_headers_by_status(status: int, should_retry: list[str] | None) -> None:
    _, headers = render(GatewayError(status, "bad_request", "x"), context(sent()))
    assert headers.get("x-should-retry") == should_retry


@pytest.mark.parametrize(
    ("status", "code", "should_retry", "retry_after"),
    [
        (409, "idempotency_in_flight", ["true"], ["1"]),  # the one 409 Sent's clients should retry
        (409, "bad_request", ["false"], None),  # every other 409 keeps the status's header
        (422, "idempotency_mismatch", ["false"], None),
    ],
)
def test_dialect_headers_by_error_code_replace_the_status_ones(
    status: int, code: str, should_retry: list[str], retry_after: list[str] | None
) -> None:
    headers_in = {"retry-after": "1"} if code == "idempotency_in_flight" else None
    _, headers = render(GatewayError(status, code, "x", headers=headers_in), context(sent()))
    assert headers.get("x-should-retry") == should_retry
    assert headers.get("retry-after") == retry_after


@pytest.mark.parametrize(("test_mode", "header"), [(True, ["true"]), (False, None), (None, None)])
def test_test_mode_errors_say_so(test_mode: bool | None, header: list[str] | None) -> None:
    _, headers = render(GatewayError(400, "bad_request", "x"), context(sent(), test_mode))
    assert headers.get("x-test-mode") == header


def test_outcome_and_error_headers_are_sent() -> None:
    error = GatewayError(503, "key_verification_unavailable", "x", outcome="not_sent", headers={"Retry-After": "5"})
    _, headers = render(error, context(sent()))
    assert headers["x-gateway-outcome"] == ["not_sent"]
    assert headers["retry-after"] == ["5"]


def test_a_dialect_message_rewords_the_engine_message() -> None:
    dialect = dataclasses.replace(sent().dialect, messages={"unauthorized": "Authentication failed"})
    policy = dataclasses.replace(sent(), dialect=dialect)
    doc, _ = render(GatewayError(401, "unauthorized", "Invalid API key."), context(policy))
    assert doc["error"]["message"] == "Authentication failed"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (GatewayError(404, "not_found", "No provider policy serves '/x'."),
         {"type": "urn:testmode-proxy:error:not_found", "title": "Not Found", "status": 404,
          "detail": "No provider policy serves '/x'.", "code": "not_found", "request_id": REQUEST_ID}),
        (GatewayError(503, "overloaded", "Busy.", outcome="not_sent"),
         {"type": "urn:testmode-proxy:error:overloaded", "title": "Service Unavailable", "status": 503,
          "detail": "Busy.", "code": "overloaded", "request_id": REQUEST_ID, "outcome": "not_sent"}),
        (bad_request("bad_request", "Bad path.", field="path"),
         {"type": "urn:testmode-proxy:error:bad_request", "title": "Bad Request", "status": 400,
          "detail": "Bad path.", "code": "bad_request", "request_id": REQUEST_ID,
          "errors": [{"field": "path", "message": "Bad path."}]}),
        (GatewayError(418, "teapot", "No."),
         {"type": "urn:testmode-proxy:error:teapot", "title": "Error", "status": 418, "detail": "No.",
          "code": "teapot", "request_id": REQUEST_ID}),
    ],
)
def test_without_a_policy_errors_are_problem_details(error: GatewayError, expected: dict[str, Any]) -> None:
    doc, headers = render(error, context(None, test_mode=True))
    assert doc == expected
    assert problem_details(error, REQUEST_ID) == expected
    assert headers["content-type"] == ["application/problem+json"]
    assert headers["x-request-id"] == [REQUEST_ID]
    assert "x-test-mode" not in headers


@pytest.mark.parametrize(
    ("body", "expected_headers"),
    [
        (b'{"ok":true}', [(b"x-request-id", b"r"), (b"content-length", b"11")]),
        (b"", [(b"x-request-id", b"r"), (b"content-length", b"0")]),
        (None, [(b"x-request-id", b"r")]),
    ],
)
async def test_send_json_sends_one_complete_response(
    body: bytes | None, expected_headers: list[tuple[bytes, bytes]]
) -> None:
    sent_messages: list[Message] = []

    async def send(message: Message) -> None:
        sent_messages.append(message)

    ctx = RequestContext("abc", "req_abc")
    await send_json(send, ctx, 201 if body is not None else 204, body, [(b"x-request-id", b"r")])
    assert ctx.status == (201 if body is not None else 204)
    start, end = sent_messages
    names = [name for name, _ in start["headers"]]
    assert [h for h in start["headers"] if h[0] != b"date"] == expected_headers
    assert names.count(b"date") == 1
    assert re.fullmatch(rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", dict(start["headers"])[b"date"])
    assert end == {"type": "http.response.body", "body": body or b""}
