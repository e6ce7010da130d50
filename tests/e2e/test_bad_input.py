"""Bad input against the real server: each case gets its own 4xx, as JSON in Sent's envelope with an
``X-Request-Id``, never a 500, and is never forwarded.

The key is an issued *live* key unless a case says otherwise, so a misjudged request would be forwarded and
the stand-in provider would record it.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Keys
from tests.support.envelope import error
from tests.support.servers import Gateway, Provider

MIB = 1024 * 1024
SEND = b'"to": ["+15555550100"], "text": "hi"'


def _chunks(total: int) -> Iterator[bytes]:
    """A chunked body (no Content-Length) of ``total`` bytes: a JSON object with one long string."""
    yield b'{"test_mode": true, "text": "'
    sent = 0
    while sent < total:
        piece = min(64 * 1024, total - sent)
        sent += piece
        yield b"a" * piece
    yield b'"}'


# (id, raw body, content type, status, Sent error code)
BODIES: list[tuple[str, bytes, str | None, int, str]] = [
    ("truncated", b'{"test_mode": true, ' + SEND[:20], "application/json", 400, "VALIDATION_002"),
    ("trailing-garbage", b'{"test_mode": true, ' + SEND + b"} x", "application/json", 400, "VALIDATION_002"),
    ("trailing-comma", b'{"test_mode": true, ' + SEND + b",}", "application/json", 400, "VALIDATION_002"),
    ("single-quotes", b"{'test_mode': true}", "application/json", 400, "VALIDATION_002"),
    ("array", b'[{"test_mode": true}]', "application/json", 400, "VALIDATION_002"),
    ("string", b'"test_mode"', "application/json", 400, "VALIDATION_002"),
    ("true", b"true", "application/json", 400, "VALIDATION_002"),
    ("null", b"null", "application/json", 400, "VALIDATION_002"),
    ("nan", b'{"test_mode": NaN, ' + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("nan-elsewhere", b'{"test_mode": true, "price": NaN, ' + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("infinity", b'{"price": Infinity, ' + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("minus-infinity", b'{"price": -Infinity, ' + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("huge-float", b'{"price": 1e400, ' + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("huge-integer", b'{"price": ' + b"9" * 5000 + b", " + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("huge-integer-flagged", b'{"test_mode": true, "n": -' + b"1" * 4301 + b"}", "application/json", 400,
     "VALIDATION_002"),
    ("deep-arrays", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "VALIDATION_002"),
    ("deep-objects", b'{"test_mode": true, "v": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}",
     "application/json", 400, "VALIDATION_002"),
    ("deep-unclosed", b'{"v": ' + b"[" * 50_000, "application/json", 400, "VALIDATION_002"),
    ("invalid-utf8", b'{"text": "\xff\xfe", "test_mode": true}', "application/json", 400, "VALIDATION_002"),
    ("utf16", '{"test_mode": true}'.encode("utf-16"), "application/json; charset=utf-16", 400, "VALIDATION_002"),
    ("bom", b'\xef\xbb\xbf{"test_mode": true, ' + SEND + b"}", "application/json", 400, "VALIDATION_002"),
    ("lone-surrogate", b'{"test_mode": true, "text": "\\ud800"}', "application/json", 400, "VALIDATION_002"),
    ("duplicate-flag", b'{"test_mode": true, ' + SEND + b', "test_mode": false}', "application/json", 400,
     "VALIDATION_006"),
    ("duplicate-flag-reversed", b'{"test_mode": false, "test_mode": true, ' + SEND + b"}", "application/json", 400,
     "VALIDATION_006"),
    ("duplicate-sandbox", b'{"sandbox": false, ' + SEND + b', "sandbox": true}', "application/json", 400,
     "VALIDATION_006"),
    ("duplicate-escaped", b'{"t\\u0065st_mode": true, "test_mode": false, ' + SEND + b"}", "application/json", 400,
     "VALIDATION_006"),
    ("text-plain", b'{"test_mode": true, ' + SEND + b"}", "text/plain", 415, "VALIDATION_003"),
    ("form", b"test_mode=true&to=%2B15555550100&text=hi", "application/x-www-form-urlencoded", 415,
     "VALIDATION_003"),
    ("multipart", b'--b\r\nContent-Disposition: form-data; name="test_mode"\r\n\r\ntrue\r\n--b--\r\n',
     "multipart/form-data; boundary=b", 415, "VALIDATION_003"),
    ("no-content-type", b'{"test_mode": true, ' + SEND + b"}", None, 415, "VALIDATION_003"),
    ("too-large", b'{"test_mode": true, "text": "' + b"a" * MIB + b'"}', "application/json", 413, "VALIDATION_004"),
]

WRONG_FLAGS: list[Any] = ["true", 1, None, "yes", [], {}, 0, "false", 1.5, {"enable": True}]


@pytest.mark.parametrize(("raw", "content_type", "status", "code"), [b[1:] for b in BODIES],
                         ids=[b[0] for b in BODIES])
def test_bad_body_gets_its_4xx_and_is_never_forwarded(
    client: httpx.Client, keys: Keys, recorder: Provider, raw: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"x-api-key": keys.sent_live}
    if content_type is not None:
        headers["content-type"] = content_type
    response = client.post("/v3/messages", headers=headers, content=raw)
    error(response, status, code)
    assert recorder.records() == []


def test_oversized_chunked_body_is_413_and_never_forwarded(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live, "content-type": "application/json"},
                           content=_chunks(2 * MIB))
    error(response, 413, "VALIDATION_004")
    assert "content-length" not in response.request.headers  # it really was chunked
    assert recorder.records() == []


def test_chunked_body_under_the_limit_is_read_whole(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live, "content-type": "application/json"},
                           content=_chunks(MIB // 2))
    error(response, 400, "VALIDATION_001")  # parsed, in test mode, and judged: `to` is missing
    assert response.headers["x-test-mode"] == "true"
    assert recorder.records() == []


def test_compressed_body_is_refused_not_forwarded(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    raw = gzip.compress(b'{"test_mode": true, ' + SEND + b"}")
    response = client.post("/v3/messages", content=raw, headers={
        "x-api-key": keys.sent_live, "content-type": "application/json", "content-encoding": "gzip"})
    assert 400 <= response.status_code < 500
    error(response, response.status_code)
    assert recorder.records() == []


@pytest.mark.parametrize("flag", ["test_mode", "sandbox"])
@pytest.mark.parametrize("value", WRONG_FLAGS, ids=[repr(v) for v in WRONG_FLAGS])
@pytest.mark.parametrize("route", [("POST", "/v3/messages"), ("DELETE", "/v3/contacts/ct_1"),
                                   ("PATCH", "/v3/contacts/ct_1")], ids=lambda r: f"{r[0]} {r[1]}")
def test_wrong_type_flag_is_400_and_never_forwarded(
    client: httpx.Client, keys: Keys, recorder: Provider, flag: str, value: Any, route: tuple[str, str]
) -> None:
    method, path = route
    response = client.request(method, path, headers={"x-api-key": keys.sent_live},
                              json={flag: value, "to": ["+15555550100"], "text": "hi"})
    err = error(response, 400, "VALIDATION_005")
    assert err["details"] == {flag: [err["message"]]}
    assert recorder.records() == []


def test_wrong_type_flag_is_refused_for_test_keys_too(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/contacts", headers={"x-api-key": keys.sent_test},
                           json={"sandbox": "true", "phone_number": "+15555550100"})
    error(response, 400, "VALIDATION_005")
    assert recorder.records() == []


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({}, 401, "AUTH_001"),
    ({"x-api-key": ""}, 401, "AUTH_001"),
    ({"x-api-key": "sk_live_gw_revoked_or_never_issued"}, 401, "AUTH_001"),
    ({"authorization": "Bearer sk_live_gw_wrong_header"}, 401, "AUTH_001"),
], ids=["missing", "empty", "unknown-issued", "wrong-header"])
def test_missing_or_invalid_key_is_401_and_never_forwarded(
    client: httpx.Client, recorder: Provider, headers: dict[str, str], status: int, code: str
) -> None:
    response = client.post("/sent/v3/messages", headers=headers,
                           json={"test_mode": True, "to": ["+15555550100"], "text": "hi"})
    error(response, status, code)
    assert recorder.records() == []


def test_missing_scope_is_403_and_never_forwarded(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/webhooks", headers={"x-api-key": keys.sent_contacts_only},
                           json={"test_mode": True, "endpoint_url": "https://example.com/h"})
    error(response, 403, "AUTH_002")
    assert recorder.records() == []


def _raw_post(gateway: Gateway, target: str, key: str, body: bytes) -> tuple[bytes, bytes]:
    """POST with the request target exactly as given (httpx would remove dot segments first)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
                     f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                     "connection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return head, payload


@pytest.mark.parametrize("target", ["/v3/contacts/../messages", "/v3/contacts/%2e%2e/messages", "/v3/./messages",
                                    "/sent/%2E/v3/messages"])
def test_dot_segments_are_refused(gateway: Gateway, keys: Keys, recorder: Provider, target: str) -> None:
    head, payload = _raw_post(gateway, target, keys.sent_live, b'{"to": ["+15555550100"], "text": "hi"}')
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"\r\ncontent-type: application/json\r\n" in head  # in the dialect of the key's policy (Sent)
    assert b"\r\nx-request-id: req_" in head
    doc = json.loads(payload)
    assert (doc["success"], doc["error"]["code"]) == (False, "VALIDATION_001")
    assert recorder.records() == []


def test_errors_are_never_500_and_always_carry_a_request_id(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    """A sweep over odd but well-formed requests on every declared route: 2xx or 4xx, never 5xx."""
    seen = set()
    for method, path in [("POST", "/v3/messages"), ("POST", "/v3/contacts"), ("PATCH", "/v3/contacts/x"),
                         ("PUT", "/v3/templates/x"), ("POST", "/v3/webhooks"), ("POST", "/v3/profiles"),
                         ("POST", "/v3/brands"), ("POST", "/v3/users"), ("POST", "/v3/profiles/p/campaigns")]:
        for body in ({"test_mode": True, "brand": "x", "campaign": [], "to": "x", "template": "x", "name": {}},
                     {"test_mode": True, "phone_number": ["+15555550100"], "channel": 5, "email": None},
                     {"sandbox": True, "to": [None], "text": None, "template": {"id": None, "name": None}},
                     {"sandbox": True, "endpoint_url": "javascript:alert(1)", "retry_count": 1e300},
                     {"test_mode": True, "": "", "\u0000": "\u0000", "webHookUrl": "https://x.test/\u2028"}):
            response = client.request(method, path, headers={"x-api-key": keys.sent_live}, json=body)
            assert response.status_code < 500, (method, path, body, response.text)
            assert response.headers["x-request-id"]
            seen.add(response.status_code)
    assert 400 in seen and seen & {200, 201, 202}
    assert recorder.records() == []
