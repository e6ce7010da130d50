"""Body reading and parsing: size cap, JSON only, and every shape that cannot be told apart refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import pytest

from proxy.policy.model import Policy, PolicySet
from proxy.stages.body import Body
from tests.stages.harness import harness
from tests.stages.seeds import issued, seed

JSON = {"content-type": "application/json"}
stage = partial(Body, max_body_bytes=8192, max_depth=16)


async def test_json_body_is_parsed_and_replayed(sent: Policy) -> None:
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=b'{"phone_number": "+15555555555"}', headers=JSON)
    assert response.status_code == 299
    assert response.json()["body"] == {"phone_number": "+15555555555"}
    assert terminal.received_body == b'{"phone_number": "+15555555555"}'


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.api+json"])
async def test_json_media_types(sent: Policy, content_type: str) -> None:
    client, _ = harness(stage, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 299


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_empty_mutation_body_reads_as_empty_object(sent: Policy, method: str) -> None:
    client, _ = harness(stage, seed(sent, method, "/v3/contacts/abc", key=issued("live")))
    async with client:
        response = await client.request(method, "/v3/contacts/abc")
    assert response.json()["body"] == {}


async def test_get_without_body_is_not_read(sent: Policy) -> None:
    client, _ = harness(stage, seed(sent, "GET", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.get("/v3/contacts")
    assert response.json()["body"] is None


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{", JSON, 400, "VALIDATION_002"),
        (b'{"a": NaN}', JSON, 400, "VALIDATION_002"),
        (b'{"a": 1e400}', JSON, 400, "VALIDATION_002"),
        (b'{"a": ' + b"1" * 5000 + b"}", JSON, 400, "VALIDATION_002"),
        (b"[1, 2]", JSON, 400, "VALIDATION_002"),
        (b'"text"', JSON, 400, "VALIDATION_002"),
        (b"\xff\xfe{}", JSON, 400, "VALIDATION_002"),
        (b"[" * 20 + b"]" * 20, JSON, 400, "VALIDATION_002"),
        (b'{"a":' * 17 + b"1" + b"}" * 17, JSON, 400, "VALIDATION_002"),
        (b"phone=1", {"content-type": "application/x-www-form-urlencoded"}, 415, "VALIDATION_003"),
        (b"{}", {"content-type": "text/plain"}, 415, "VALIDATION_003"),
        (b"{}", {}, 415, "VALIDATION_003"),
        (b'{"test_mode": false, "test_mode": true}', JSON, 400, "VALIDATION_006"),
        (b'{"sandbox": true, "sandbox": false}', JSON, 400, "VALIDATION_006"),
        (b'{"test_mode": false, "test\\u005fmode": true}', JSON, 400, "VALIDATION_006"),
        (b'{"Test_Mode": true}', JSON, 400, "VALIDATION_006"),  # a provider that ignores case reads the flag
        (b'{"SANDBOX": true}', JSON, 400, "VALIDATION_006"),
        (b'{"test-mode": true, "test_mode": false}', JSON, 400, "VALIDATION_006"),
        (b"x" * 8193, JSON, 413, "VALIDATION_004"),
    ],
)
async def test_refusals(sent: Policy, content: bytes, headers: dict[str, str], status: int, code: str) -> None:
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=content, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert terminal.calls == 0


@pytest.mark.parametrize("content", [
    b'{"a": 1, "a": 2, "test_mode": false}',
    b'{"variables": {"sandbox": 1, "sandbox": 2, "Test_Mode": 3}, "test_mode": false}',  # not on a trigger's path
])
async def test_duplicate_keys_elsewhere_are_not_refused(sent: Policy, content: bytes) -> None:
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=content, headers=JSON)
    assert response.status_code == 299
    assert terminal.received_body == content


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"mail_settings": {"sandbox_mode": {"enable": true}}, "subject": "hi", "mail_settings": {}}',
         "mail_settings"),
        (b'{"mail_settings": {"sandbox_mode": {"enable": true}, "sandbox_mode": {}}}', "mail_settings.sandbox_mode"),
        (b'{"mail_settings": {"sandbox_mode": {"Enable": true}}}', "mail_settings.sandbox_mode.Enable"),
    ],
)
async def test_a_key_on_a_nested_flags_path_given_twice_or_misspelled_is_refused(
    policy_set: PolicySet, content: bytes, field: str
) -> None:
    sendgrid = policy_set.by_name("sendgrid")
    assert sendgrid is not None
    client, terminal = harness(stage, seed(sendgrid, "POST", "/v3/mail/send", key=issued("live")))
    async with client:
        response = await client.post("/v3/mail/send", content=content, headers=JSON)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert terminal.calls == 0


async def test_chunked_body_over_the_cap_is_413_at_the_limit(sent: Policy) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert terminal.calls == 0


async def test_declared_length_over_the_cap_is_413_before_reading(sent: Policy) -> None:
    client, terminal = harness(stage, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=b"{}", headers={**JSON, "content-length": "999999"})
    assert response.status_code == 413
    assert terminal.calls == 0


async def test_the_configured_cap_applies(sent: Policy) -> None:
    small = partial(Body, max_body_bytes=10, max_depth=16)
    client, _ = harness(small, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=b'{"phone_number": "+1555"}', headers=JSON)
    assert response.status_code == 413


async def test_a_slow_body_is_408(sent: Policy) -> None:
    async def drip() -> AsyncIterator[bytes]:
        yield b"{"
        await asyncio.sleep(1)
        yield b"}"

    slow = partial(Body, max_body_bytes=8192, max_depth=16, body_timeout=0.1)
    client, terminal = harness(slow, seed(sent, "POST", "/v3/contacts", key=issued("live")))
    async with client:
        response = await client.post("/v3/contacts", content=drip(), headers=JSON)
    assert response.status_code == 408
    assert terminal.calls == 0
